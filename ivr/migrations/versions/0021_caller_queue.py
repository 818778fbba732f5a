"""The caller queue: a clinic's choice, how it rings its staff lines and its longest wait, and
each queued escalation's state and the staff line being rung for it

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0021'
down_revision: Union[str, Sequence[str], None] = '0020'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'queue_callers', sa.Boolean(), server_default=sa.true(), nullable=False,
            comment="a caller asking for a person waits in a queue, hearing their place, while staff lines are "
                    "rung in turn; off: the caller's call rings the staff lines itself"))
        batch_op.add_column(sa.Column(
            'ring_together', sa.Boolean(), server_default=sa.false(), nullable=False,
            comment='for a queued caller, ring every staff line at once (the first to press 1 takes them) '
                    'instead of one after another'))
        batch_op.add_column(sa.Column(
            'queue_max_wait', sa.Integer(), server_default='300', nullable=False,
            comment='seconds a caller waits in the queue before being offered a call back or a message'))
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'queue_status', sa.String(length=12), nullable=True,
            comment='waiting, taken, call_back, unanswered, gone; None: the caller was not queued'))
        batch_op.add_column(sa.Column('ring_line', sa.Integer(), server_default='0', nullable=False,
                                      comment='the staff line being rung for a queued caller, in order'))
        batch_op.add_column(sa.Column('ring_call_sid', sa.String(length=64), nullable=True,
                                      comment="the call ringing that staff line ('dialing' while it is placed)"))
        batch_op.add_column(sa.Column('ring_at', sa.DateTime(), nullable=True,
                                      comment='when that line was claimed for ringing'))


def downgrade() -> None:
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_column('ring_at')
        batch_op.drop_column('ring_call_sid')
        batch_op.drop_column('ring_line')
        batch_op.drop_column('queue_status')
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('queue_max_wait')
        batch_op.drop_column('ring_together')
        batch_op.drop_column('queue_callers')
