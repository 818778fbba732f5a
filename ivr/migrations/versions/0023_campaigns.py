"""Campaigns: a clinic's cadence of reminder steps per appointment type, the touches that carry
them out, and what keeps outreach safe and paced at dispatch (a daily contact cap, days a patient
asked not to be contacted on, a first day for outreach, a clinic's most calls in progress)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0023'
down_revision: Union[str, Sequence[str], None] = '0022'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'campaign',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('appointment_type', sa.String(length=40), nullable=True, comment='None: every type'),
        sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('require_consent', sa.Boolean(), server_default=sa.false(), nullable=False,
                  comment='contact only patients with a recorded consent'),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('clinic_id', 'name', name='uq_campaign_clinic_name'))
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_clinic_id'), ['clinic_id'], unique=False)
    op.create_table(
        'campaign_step',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False, comment="names the touch's step: 72h-call"),
        sa.Column('purpose', sa.String(length=12), server_default='reminder', nullable=False,
                  comment='reminder (before the visit) or no_show (after a missed one)'),
        sa.Column('offset_minutes', sa.Integer(), nullable=False,
                  comment="from the appointment's start: -4320 is 72 h before"),
        sa.Column('channel', sa.String(length=10), nullable=False, comment='voice, sms or preferred'),
        sa.Column('audience', sa.String(length=10), nullable=False,
                  comment='all, or only patients who prefer voice / sms'),
        sa.Column('fallback_sms', sa.Boolean(), server_default=sa.false(), nullable=False,
                  comment='a call that never reaches the patient is followed by a text'),
        sa.Column('retry_on', sa.String(length=60), server_default='busy,no-answer', nullable=False,
                  comment='call results tried again: busy, no-answer, failed, machine'),
        sa.Column('max_attempts', sa.Integer(), server_default='3', nullable=False,
                  comment='calls at most, retries included'),
        sa.Column('retry_minutes', sa.Integer(), server_default='60', nullable=False,
                  comment='wait before a retry'),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'name', name='uq_campaign_step_name'))
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_step_campaign_id'), ['campaign_id'], unique=False)
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'max_calls_in_progress', sa.Integer(), server_default='10', nullable=False,
            comment='outbound calls of the clinic ringing or talking at once, at most (more wait their turn)'))
        batch_op.add_column(sa.Column(
            'daily_contact_cap', sa.Integer(), server_default='4', nullable=False,
            comment="most calls (each attempt) and texts the clinic starts to one patient in a day (the "
                    "patient's own day), across campaigns and channels"))
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('high_priority', sa.Boolean(), server_default=sa.false(), nullable=False,
                                      comment='a missed visit also opens a task for staff at once'))
        batch_op.add_column(sa.Column(
            'no_contact_days', sa.String(length=40), nullable=True,
            comment='weekdays the patient asked not to be contacted on, comma-separated: sat,sun'))
        batch_op.add_column(sa.Column('contact_not_before', sa.Date(), nullable=True,
                                      comment='no outreach before this day'))
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'appointment_type', sa.String(length=40), nullable=True,
            comment="the clinic's own kind of visit ('new patient'); picks its campaign"))
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'campaign_step_id', sa.Integer(), nullable=True,
            comment='the campaign step it carries out; None: a lone reminder'))
        batch_op.add_column(sa.Column(
            'dispatched_at', sa.DateTime(), nullable=True,
            comment='when it last rang or texted the patient (the daily contact cap counts these)'))
        batch_op.create_foreign_key('fk_touch_campaign_step_id', 'campaign_step', ['campaign_step_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_constraint('fk_touch_campaign_step_id', type_='foreignkey')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('campaign_step_id')
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_column('appointment_type')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('contact_not_before')
        batch_op.drop_column('no_contact_days')
        batch_op.drop_column('high_priority')
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('daily_contact_cap')
        batch_op.drop_column('max_calls_in_progress')
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_step_campaign_id'))
    op.drop_table('campaign_step')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_clinic_id'))
    op.drop_table('campaign')
