"""call.clinic_id: every call belongs to a clinic, inbound calls too (they have no touch)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clinic_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_call_clinic_id'), ['clinic_id'], unique=False)
        batch_op.create_foreign_key('fk_call_clinic_id_clinic', 'clinic', ['clinic_id'], ['id'])
    # Calls so far were outbound reminders: their clinic is the patient's.
    op.execute(sa.text(
        "UPDATE \"call\" SET clinic_id = (SELECT patient.clinic_id FROM touch "
        "JOIN appointment ON appointment.id = touch.appointment_id "
        "JOIN patient ON patient.id = appointment.patient_id WHERE touch.id = \"call\".touch_id) "
        "WHERE touch_id IS NOT NULL"))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_constraint('fk_call_clinic_id_clinic', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_call_clinic_id'))
        batch_op.drop_column('clinic_id')
