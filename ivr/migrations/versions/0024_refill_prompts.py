"""Refill prompts: a prescription's refill due date, refills left and pharmacy; a touch about a
prescription instead of an appointment (every touch names its patient), and text conversations
about one

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0024'
down_revision: Union[str, Sequence[str], None] = '0023'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('prescription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refill_due_on', sa.Date(), nullable=True,
                                      comment='when the patient runs out (refill prompts are planned around it); '
                                              'None: not prompted'))
        batch_op.add_column(sa.Column('refills_left', sa.Integer(), nullable=True,
                                      comment='fills the prescription still allows; None: unknown'))
        batch_op.add_column(sa.Column('filled_at', sa.DateTime(), nullable=True,
                                      comment='when its last fill was recorded (refill requests before it were '
                                              'for an earlier fill)'))
        batch_op.add_column(sa.Column('pharmacy_name', sa.String(length=200), nullable=True,
                                      comment='where it is filled'))
        batch_op.add_column(sa.Column('pharmacy_phone', sa.String(length=20), nullable=True,
                                      comment="the pharmacy's line, E.164; None: the clinic's staff phone"))
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_id', sa.Integer(), nullable=True,
                                      comment="whom it contacts (its subject's patient)"))
        batch_op.add_column(sa.Column('prescription_id', sa.Integer(), nullable=True,
                                      comment='the prescription whose refill it prompts'))
        batch_op.add_column(sa.Column('refill_due_on', sa.Date(), nullable=True,
                                      comment='the refill due date it prompts for (the next fill is a new subject)'))
    # Every touch so far is about an appointment: its patient is the appointment's.
    op.execute("UPDATE touch SET patient_id = (SELECT appointment.patient_id FROM appointment "
               "WHERE appointment.id = touch.appointment_id)")
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.alter_column('patient_id', existing_type=sa.Integer(), nullable=False,
                              existing_comment="whom it contacts (its subject's patient)")
        batch_op.alter_column('appointment_id', existing_type=sa.Integer(), nullable=True,
                              comment='the visit it is about, or None: a prescription')
        batch_op.create_index(batch_op.f('ix_touch_patient_id'), ['patient_id'], unique=False)
        batch_op.create_foreign_key('fk_touch_patient_id', 'patient', ['patient_id'], ['id'])
        batch_op.create_foreign_key('fk_touch_prescription_id', 'prescription', ['prescription_id'], ['id'])
        batch_op.create_unique_constraint('uq_touch_prescription_step', ['prescription_id', 'refill_due_on', 'step'])
        batch_op.create_check_constraint('ck_touch_one_subject',
                                         '(appointment_id IS NULL) <> (prescription_id IS NULL) '
                                         'AND (prescription_id IS NULL) = (refill_due_on IS NULL)')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prescription_id', sa.Integer(), nullable=True,
                                      comment='the prescription a refill prompt is about'))
        batch_op.create_foreign_key('fk_conversation_prescription_id', 'prescription', ['prescription_id'], ['id'])
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.alter_column('purpose', existing_type=sa.String(length=12), existing_nullable=False,
                              existing_server_default='reminder',
                              comment="reminder (before the visit), no_show (after a missed one) or "
                                      "refill (around a prescription's refill due date)")
        batch_op.alter_column('offset_minutes', existing_type=sa.Integer(), existing_nullable=False,
                              comment="from the appointment's start (-4320 is 72 h before), or from the start "
                                      "of a refill's due day")


def downgrade() -> None:
    with op.batch_alter_table('campaign_step', schema=None) as batch_op:
        batch_op.alter_column('offset_minutes', existing_type=sa.Integer(), existing_nullable=False,
                              comment="from the appointment's start: -4320 is 72 h before")
        batch_op.alter_column('purpose', existing_type=sa.String(length=12), existing_nullable=False,
                              existing_server_default='reminder',
                              comment='reminder (before the visit) or no_show (after a missed one)')
    # A refill text's question cannot be answered by the older code: it is closed.
    op.execute("UPDATE conversation SET closed_at = CURRENT_TIMESTAMP "
               "WHERE prescription_id IS NOT NULL AND closed_at IS NULL")
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_constraint('fk_conversation_prescription_id', type_='foreignkey')
        batch_op.drop_column('prescription_id')
    # Touches about prescriptions have no place in the older shape; their calls and texts stay,
    # no longer pointing at them.
    for table in ('"call"', 'message'):
        op.execute(f"UPDATE {table} SET touch_id = NULL WHERE touch_id IN "
                   "(SELECT id FROM touch WHERE appointment_id IS NULL)")
    op.execute("DELETE FROM touch WHERE appointment_id IS NULL")
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_constraint('ck_touch_one_subject', type_='check')
        batch_op.drop_constraint('uq_touch_prescription_step', type_='unique')
        batch_op.drop_constraint('fk_touch_prescription_id', type_='foreignkey')
        batch_op.drop_constraint('fk_touch_patient_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_touch_patient_id'))
        batch_op.alter_column('appointment_id', existing_type=sa.Integer(), nullable=False, comment=None)
        batch_op.drop_column('refill_due_on')
        batch_op.drop_column('prescription_id')
        batch_op.drop_column('patient_id')
    with op.batch_alter_table('prescription', schema=None) as batch_op:
        batch_op.drop_column('pharmacy_phone')
        batch_op.drop_column('pharmacy_name')
        batch_op.drop_column('filled_at')
        batch_op.drop_column('refills_left')
        batch_op.drop_column('refill_due_on')
