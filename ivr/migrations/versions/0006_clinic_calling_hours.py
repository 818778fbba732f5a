"""clinic.calls_from / calls_until: calling hours, in the patient's local time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calls_from', sa.Time(), server_default='09:00:00', nullable=False,
                                      comment='earliest local time a patient is rung'))
        batch_op.add_column(sa.Column('calls_until', sa.Time(), server_default='20:00:00', nullable=False,
                                      comment='no call starts at or after this local time'))


def downgrade() -> None:
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('calls_until')
        batch_op.drop_column('calls_from')
