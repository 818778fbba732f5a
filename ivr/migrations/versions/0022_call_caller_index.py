"""An index on call (clinic_id, from_number): an inbound caller's wrong dates of birth today are
counted on every turn before they are identified, and must not scan every call of the clinic

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02

"""
from typing import Sequence, Union

from alembic import op

revision: str = '0022'
down_revision: Union[str, Sequence[str], None] = '0021'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_clinic_id_from_number', ['clinic_id', 'from_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_clinic_id_from_number')
