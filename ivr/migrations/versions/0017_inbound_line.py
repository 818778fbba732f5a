"""The inbound line: call.patient_id and call.appointment_id (a caller once identified),
caller_language, prescription, task.prescription_id

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0017'
down_revision: Union[str, Sequence[str], None] = '0016'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'caller_language',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False, comment='E.164'),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('chosen_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('clinic_id', 'phone', name='uq_caller_language'))
    op.create_table(
        'prescription',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('medication', sa.String(length=200), nullable=False,
                  comment="as the patient knows it ('metformin')"),
        sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('prescription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prescription_patient_id'), ['patient_id'], unique=False)
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_id', sa.Integer(), nullable=True,
                                      comment='an inbound caller, once their identity was checked'))
        batch_op.add_column(sa.Column('appointment_id', sa.Integer(), nullable=True,
                                      comment="that caller's next appointment, when identified"))
        batch_op.create_index(batch_op.f('ix_call_patient_id'), ['patient_id'], unique=False)
        batch_op.create_foreign_key('fk_call_patient_id_patient', 'patient', ['patient_id'], ['id'])
        batch_op.create_foreign_key('fk_call_appointment_id_appointment', 'appointment', ['appointment_id'], ['id'])
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prescription_id', sa.Integer(), nullable=True,
                                      comment='the prescription to refill'))
        batch_op.create_foreign_key('fk_task_prescription_id_prescription', 'prescription',
                                    ['prescription_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_constraint('fk_task_prescription_id_prescription', type_='foreignkey')
        batch_op.drop_column('prescription_id')
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_constraint('fk_call_appointment_id_appointment', type_='foreignkey')
        batch_op.drop_constraint('fk_call_patient_id_patient', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_call_patient_id'))
        batch_op.drop_column('appointment_id')
        batch_op.drop_column('patient_id')
    with op.batch_alter_table('prescription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prescription_patient_id'))
    op.drop_table('prescription')
    op.drop_table('caller_language')
