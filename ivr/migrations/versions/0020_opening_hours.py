"""Opening hours, closures, a clinic's holiday country and subdivision, voicemail on tasks,
staff lines tried after the staff phone, escalations

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0020'
down_revision: Union[str, Sequence[str], None] = '0019'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'opening_hours',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False, comment='0 Monday ... 6 Sunday'),
        sa.Column('opens', sa.Time(), nullable=False),
        sa.Column('closes', sa.Time(), nullable=False),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('clinic_id', 'weekday', 'opens', name='uq_opening_hours'))
    with op.batch_alter_table('opening_hours', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opening_hours_clinic_id'), ['clinic_id'], unique=False)
    op.create_table(
        'clinic_closure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('clinic_id', 'day', name='uq_clinic_closure'))
    op.create_table(
        'staff_line',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False, comment='1 is tried right after clinic.staff_phone'),
        sa.Column('phone', sa.String(length=20), nullable=False, comment='E.164'),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('clinic_id', 'position', name='uq_staff_line'))
    op.create_table(
        'escalation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=24), nullable=False,
                  comment='asked, stuck, not_verified, refill, emergency, unknown'),
        sa.Column('verified', sa.Boolean(), nullable=False, comment="the caller's date of birth had matched"),
        sa.Column('started_at', sa.DateTime(), nullable=False,
                  comment='when the caller was first put through or promised'),
        sa.Column('answered_at', sa.DateTime(), nullable=True, comment='when a person took the call'),
        sa.Column('staff_phone', sa.String(length=20), nullable=True, comment='the line that took it'),
        sa.Column('outcome', sa.String(length=16), nullable=True,
                  comment='answered, call_back, voicemail, abandoned, unanswered; None while it lasts'),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('callback_status', sa.String(length=12), nullable=True,
                  comment='virtual hold: planned, dialing, connecting, done, failed; None: not asked for'),
        sa.Column('callback_call_sid', sa.String(length=64), nullable=True,
                  comment='the call to staff that calls back'),
        sa.ForeignKeyConstraint(['call_id'], ['call.id']),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('call_id'))
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_clinic_id'), ['clinic_id'], unique=False)
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holiday_country', sa.String(length=2), nullable=True,
                                      comment="ISO country whose public holidays close the clinic; None: its number's"))
        batch_op.add_column(sa.Column('holiday_subdivision', sa.String(length=10), nullable=True,
                                      comment='a state or province: NY, QC'))
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voicemail', sa.String(length=64), nullable=True,
                                      comment='the message a caller left (its file id)'))


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('voicemail')
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('holiday_subdivision')
        batch_op.drop_column('holiday_country')
    op.drop_table('clinic_closure')
    op.drop_table('staff_line')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_clinic_id'))
    op.drop_table('escalation')
    with op.batch_alter_table('opening_hours', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opening_hours_clinic_id'))
    op.drop_table('opening_hours')
