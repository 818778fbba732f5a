"""`ivr prescriptions ...`: the prescriptions a clinic or pharmacy prompts refills for (a scheduling
or pharmacy system sends them through the API; these commands are for a person)."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from call_flows.text import clean_name
from ivr.config import is_e164
from ivr.models import Patient, Prescription, utcnow
from ivr.services import current_services


@click.group("prescriptions")
def prescriptions_group() -> None:
    """Prescriptions whose refills are prompted: when each is due, refills left, the pharmacy."""


def _medication(value: str) -> str:
    name = clean_name(value)
    if not name or len(name) > 200:
        raise click.BadParameter("a medication is 1 to 200 characters", param_hint="MEDICATION")
    return name


def _pharmacy_phone(value: str | None) -> str | None:
    if value is not None and not is_e164(value):
        raise click.BadParameter(f"{value!r} is not a phone number in E.164 form (+12125550198)",
                                 param_hint="--pharmacy-phone")
    return value


def _day(value: dt.datetime | None) -> dt.date | None:
    return None if value is None else value.date()


@prescriptions_group.command("add")
@click.argument("patient_id", type=int)
@click.argument("medication")
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), help="The day the patient runs out (YYYY-MM-DD).")
@click.option("--refills", type=click.IntRange(0, 99), help="Fills the prescription still allows.")
@click.option("--pharmacy", help="Where it is filled.")
@click.option("--pharmacy-phone", help="The pharmacy's line, E.164 (default: the clinic's staff phone).")
@with_appcontext
def prescriptions_add(patient_id: int, medication: str, due: dt.datetime | None, refills: int | None,
                      pharmacy: str | None, pharmacy_phone: str | None) -> None:
    """Add an active prescription for a patient (said by name only once they confirm who they are)."""
    medication, pharmacy_phone = _medication(medication), _pharmacy_phone(pharmacy_phone)
    with current_services().sessions.begin() as session:
        if session.get(Patient, patient_id) is None:
            raise click.ClickException(f"no patient with id {patient_id}")
        prescription = Prescription(patient_id=patient_id, medication=medication, refill_due_on=_day(due),
                                    refills_left=refills, pharmacy_name=clean_name(pharmacy or "") or None,
                                    pharmacy_phone=pharmacy_phone)
        session.add(prescription)
        session.flush()
        click.echo(f"prescription {prescription.id} for patient {patient_id}: {_describe(prescription)}")


@prescriptions_group.command("list")
@click.option("--patient", "patient_id", type=int, help="Only this patient's.")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's patients'.")
@click.option("--all", "everything", is_flag=True, help="Stopped ones too.")
@with_appcontext
def prescriptions_list(patient_id: int | None, clinic_id: int | None, everything: bool) -> None:
    """Show prescriptions, the soonest due first."""
    query = select(Prescription).join(Prescription.patient).order_by(
        Prescription.refill_due_on.is_(None), Prescription.refill_due_on, Prescription.id)
    if patient_id is not None:
        query = query.where(Prescription.patient_id == patient_id)
    if clinic_id is not None:
        query = query.where(Patient.clinic_id == clinic_id)
    if not everything:
        query = query.where(Prescription.active.is_(True))
    with current_services().sessions() as session:
        found = session.scalars(query).all()
        if not found:
            click.echo("no prescriptions")
        for prescription in found:
            click.echo(f"{prescription.id}  patient {prescription.patient_id}  {_describe(prescription)}")


@prescriptions_group.command("refilled")
@click.argument("prescription_id", type=int)
@click.option("--next-due", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="When this fill runs out (YYYY-MM-DD): the next refill prompt is planned around it.")
@click.option("--refills", type=click.IntRange(0, 99), help="Fills left after this one (default: one fewer).")
@with_appcontext
def prescriptions_refilled(prescription_id: int, next_due: dt.datetime, refills: int | None) -> None:
    """Record a fill: prompts still waiting for this refill are skipped, and the next refill is due then."""
    from ivr import touches

    with current_services().sessions.begin() as session:
        prescription = _prescription(session, prescription_id)
        if next_due.date() <= (prescription.refill_due_on or dt.date.min):
            raise click.BadParameter(f"the next fill must be due after {prescription.refill_due_on}",
                                     param_hint="--next-due")
        skipped = touches.end_refill_prompts(session.connection(), prescription.id, "refilled", utcnow())
        prescription.refill_due_on, prescription.filled_at = next_due.date(), utcnow()
        if refills is not None:
            prescription.refills_left = refills
        elif prescription.refills_left:
            prescription.refills_left -= 1
        click.echo(f"prescription {prescription_id}: {_describe(prescription)}; "
                   f"{skipped} waiting prompt(s) skipped")


@prescriptions_group.command("stop")
@click.argument("prescription_id", type=int)
@with_appcontext
def prescriptions_stop(prescription_id: int) -> None:
    """Stop a prescription: it is no longer prompted or offered for refill."""
    from ivr import touches

    with current_services().sessions.begin() as session:
        prescription = _prescription(session, prescription_id)
        prescription.active = False
        skipped = touches.end_refill_prompts(session.connection(), prescription.id, "prescription stopped",
                                                 utcnow())
    click.echo(f"prescription {prescription_id}: stopped; {skipped} waiting prompt(s) skipped")


def _prescription(session, prescription_id: int) -> Prescription:
    # FOR NO KEY UPDATE: a job inserting a conversation or a task about it (a key share) need not wait.
    prescription = session.get(Prescription, prescription_id, with_for_update={"key_share": True})
    if prescription is None:
        raise click.ClickException(f"no prescription with id {prescription_id}")
    return prescription


def _describe(prescription: Prescription) -> str:
    due = f"due {prescription.refill_due_on}" if prescription.refill_due_on else "no due date (not prompted)"
    refills = "refills unknown" if prescription.refills_left is None else f"{prescription.refills_left} refill(s) left"
    pharmacy = prescription.pharmacy_name or "the clinic's pharmacy team"
    if prescription.pharmacy_phone:
        pharmacy += f" ({prescription.pharmacy_phone})"
    state = "" if prescription.active else ", stopped"
    return f"{prescription.medication}, {due}, {refills}, {pharmacy}{state}"
