"""patient.opted_out_source: how an opt-out was given (voice, keypad, sms, staff)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opted_out_source', sa.String(length=40), nullable=True,
                                      comment='voice, keypad, sms, staff'))


def downgrade() -> None:
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('opted_out_source')
