"""task: work a person owes a patient; clinic.retry_wrong_person

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'task',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False,
                  comment='call_back, reschedule_request, wrong_person, ...'),
        sa.Column('patient_id', sa.Integer(), nullable=True),
        sa.Column('appointment_id', sa.Integer(), nullable=True),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.Column('phone', sa.String(length=20), nullable=True,
                  comment='who to reach, E.164, when no patient is known'),
        sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('closed_by', sa.String(length=120), nullable=True,
                  comment='who closed it (a person, or the system)'),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['call.id'], ),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], ),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_task_clinic_id'), 'task', ['clinic_id'], unique=False)
    op.create_index(op.f('ix_task_patient_id'), 'task', ['patient_id'], unique=False)
    op.create_index(op.f('ix_task_status'), 'task', ['status'], unique=False)
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_wrong_person', sa.Boolean(), server_default=sa.false(),
                                      nullable=False,
                                      comment='when someone else answers a reminder, ring once more the '
                                              'next day instead of a task'))


def downgrade() -> None:
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('retry_wrong_person')
    op.drop_index(op.f('ix_task_status'), table_name='task')
    op.drop_index(op.f('ix_task_patient_id'), table_name='task')
    op.drop_index(op.f('ix_task_clinic_id'), table_name='task')
    op.drop_table('task')
