"""An index on call.appointment_id: deleting or checking an appointment must not scan every call

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op

revision: str = '0019'
down_revision: Union[str, Sequence[str], None] = '0018'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_appointment_id'), ['appointment_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_appointment_id'))
