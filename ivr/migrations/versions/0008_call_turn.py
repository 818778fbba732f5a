"""call.turn and call.last_twiml: an answer applies only to the question it answers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('turn', sa.Integer(), server_default='0', nullable=False,
                                      comment='answers carry this number in their URL; older ones are stale'))
        batch_op.add_column(sa.Column('last_twiml', sa.Text(), nullable=True,
                                      comment="the caller's current question, said again to a stale or "
                                              "repeated request"))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_column('last_twiml')
        batch_op.drop_column('turn')
