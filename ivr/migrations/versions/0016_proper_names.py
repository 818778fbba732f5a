"""Locations and providers by their proper names: appointment.provider_title, and names stripped
of the English words each language now builds around them

"the Main Street office" becomes "Main Street" (the catalogue says "at the Main Street office",
"en el consultorio de Main Street"): a leading "the" and a trailing "office" are taken off (a
name like "Riverside Family Clinic" is kept whole). "Doctor Patel", "Dr. Patel" or "Dr.Patel" becomes "Patel" with the title doctor.
Names in any other form are kept as they are. (Appointment fingerprints read the provider as
"Doctor <name>", so reminders sent before the upgrade about "Doctor ..." providers still match.)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01

"""
import re
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0016'
down_revision: Union[str, Sequence[str], None] = '0015'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_PLACE = re.compile(r"^(?:the\s+)?(.+?)(?:\s+office)?$", re.IGNORECASE)
_DOCTOR = re.compile(r"^(?:doctor\s+|dr\.\s*|dr\s+)(.+)$", re.IGNORECASE)


def upgrade() -> None:
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_title', sa.String(length=20), nullable=True,
                                      comment='doctor; None: the name alone'))
        batch_op.alter_column('provider_name', existing_type=sa.String(length=200), existing_nullable=False,
                              comment="the provider's name, no title ('Amara Patel')")
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=200), existing_nullable=False,
                              existing_comment='spoken to the patient after identity check',
                              comment="the place's proper name ('Main Street'); each language builds the "
                                      "phrase around it; said only after identity check")
    bind = op.get_bind()
    for location_id, name in bind.execute(sa.text("SELECT id, name FROM location")).all():
        place = _PLACE.match(name.strip())[1]
        if place != name:
            bind.execute(sa.text("UPDATE location SET name = :name WHERE id = :id"),
                         {"name": place, "id": location_id})
    for appointment_id, name in bind.execute(sa.text("SELECT id, provider_name FROM appointment")).all():
        if match := _DOCTOR.match(name):
            bind.execute(sa.text("UPDATE appointment SET provider_name = :name, provider_title = 'doctor' "
                                 "WHERE id = :id"), {"name": match[1], "id": appointment_id})


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE appointment SET provider_name = 'Doctor ' || provider_name "
                         "WHERE provider_title = 'doctor'"))
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=200), existing_nullable=False,
                              comment='spoken to the patient after identity check')
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_column('provider_title')
        batch_op.alter_column('provider_name', existing_type=sa.String(length=200), existing_nullable=False,
                              comment=None)
    # Location names stay proper names: which ones were "the ... office" before is not known.
