"""Patients, appointments and prescriptions by the clinic's own ids: PUT creates or updates
(sending the same body twice changes nothing), GET reads, DELETE cancels or stops."""

from __future__ import annotations

from flask import abort, g
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from ivr.api import problems
from ivr.api.schemas import (AppointmentIn, AppointmentOut, PatientIn, PatientOut, PrescriptionIn,
                             PrescriptionOut)
from ivr.api.tokens import requires
from ivr.clinic_records import (RecordConflict, RecordRefused, let_go, write_appointment, write_patient,
                                write_prescription)
from ivr.db import read_only
from ivr.external_refs import external_ids, row_id
from ivr.models import Appointment, Clinic, Patient, Prescription, utcnow
from ivr.services import current_services

bp = Blueprint("records", __name__, description="Patients, appointments and prescriptions, by the clinic's own ids")
bp.register_error_handler(Exception, problems.unexpected)
ID = "<external_id:external_id>"


def _unprocessable(field: str, message: str):
    abort(problems.problem(422, "the request does not match the schema: see errors",
                           errors={"json": {field: [message]}}))


def _not_found(kind: str, external_id: str):
    abort(problems.problem(404, f"no {kind} with external id {external_id!r}"))


def _written(write):
    """What `write()` wrote, or the problem the sender has to mend: 422 naming the field, or 409."""
    try:
        return write()
    except RecordRefused as exc:
        _unprocessable(exc.field, str(exc))
    except RecordConflict as exc:
        abort(problems.problem(409, str(exc)))


def _patient_out(session: Session, patient: Patient) -> dict:
    return {**{k: getattr(patient, k) for k in PatientOut._declared_fields if hasattr(patient, k)},
            "external_id": external_ids(session, patient.clinic_id, "patient", [patient.id]).get(patient.id),
            "opted_out": patient.opted_out_at is not None}


@bp.route(f"/patients/{ID}", methods=["PUT"])
@requires("records:write")
@bp.arguments(PatientIn)
@bp.response(200, PatientOut, description="updated (or unchanged)")
@bp.alt_response(201, schema=PatientOut, description="created")
def put_patient(body: dict, external_id: str):
    """Create or update a patient."""
    with current_services().sessions.begin() as session:
        clinic = session.get(Clinic, g.caller.clinic_id)
        written = _written(lambda: write_patient(session, clinic, external_id, body, "api"))
        return _patient_out(session, written.row), 201 if written.created else 200


@bp.route(f"/patients/{ID}", methods=["GET"])
@requires("records:read")
@bp.response(200, PatientOut)
def get_patient(external_id: str):
    """Read a patient."""
    with read_only(current_services().sessions()) as session:
        found = row_id(session, g.caller.clinic_id, "patient", external_id)
        if found is None:
            _not_found("patient", external_id)
        return _patient_out(session, session.get(Patient, found))


@bp.route(f"/patients/{ID}", methods=["DELETE"])
@requires("records:write")
@bp.response(200, PatientOut, description="their visits still to come cancelled and prescriptions stopped")
def let_go_of_patient(external_id: str):
    """The clinic no longer looks after the patient: their visits still to come are cancelled and
    their prescriptions stopped, so nobody rings them again; the records stay."""
    with current_services().sessions.begin() as session:
        found = row_id(session, g.caller.clinic_id, "patient", external_id)
        if found is None:
            _not_found("patient", external_id)
        let_go(session, found, utcnow())
        return _patient_out(session, session.get(Patient, found))


def _appointment_out(session: Session, appointment: Appointment, clinic_id: int, recovery: int = 0) -> dict:
    return {"id": appointment.id,
            "external_id": external_ids(session, clinic_id, "appointment", [appointment.id]).get(appointment.id),
            "patient": external_ids(session, clinic_id, "patient", [appointment.patient_id]).get(appointment.patient_id),
            "location_id": appointment.location_id, "provider_name": appointment.provider_name,
            "provider_title": appointment.provider_title, "starts_at": appointment.starts_at,
            "appointment_type": appointment.appointment_type, "status": appointment.status,
            "recovery_planned": recovery}


@bp.route(f"/appointments/{ID}", methods=["PUT"])
@requires("records:write")
@bp.arguments(AppointmentIn)
@bp.response(200, AppointmentOut, description="updated (or unchanged)")
@bp.alt_response(201, schema=AppointmentOut, description="created")
@bp.alt_response(409, description="the change cannot be made (a cancelled or missed visit booked again, a visit "
                                  "moved to a time that has passed, one not begun marked missed): see detail")
def put_appointment(body: dict, external_id: str):
    """Create or update an appointment: a new time re-plans its reminders, `cancelled` skips them,
    `no_show` plans the campaign's offer to book again. `booked` leaves a visit the patient
    confirmed or asked to move as the patient left it."""
    clinic_id, services = g.caller.clinic_id, current_services()
    with services.sessions.begin() as session:
        written = _written(lambda: write_appointment(session, clinic_id, external_id, body, utcnow()))
        result = _appointment_out(session, written.row, clinic_id, written.recovery)
    _queue_what_was_planned(services, result["id"])
    return result, 201 if written.created else 200


def _queue_what_was_planned(services, appointment_id: int) -> None:
    """Contacts a change planned to go now are queued at once (the worker's reconciler would
    otherwise find them within its interval)."""
    from outbound import planning
    from outbound.queueing import outbound_queue, reconcile

    with read_only(services.sessions()) as session:
        reconcile(outbound_queue(services.redis), planning.touches_to_queue(session, appointment_id=appointment_id))


@bp.route(f"/appointments/{ID}", methods=["GET"])
@requires("records:read")
@bp.response(200, AppointmentOut)
def get_appointment(external_id: str):
    """Read an appointment."""
    with read_only(current_services().sessions()) as session:
        found = row_id(session, g.caller.clinic_id, "appointment", external_id)
        if found is None:
            _not_found("appointment", external_id)
        return _appointment_out(session, session.get(Appointment, found), g.caller.clinic_id)


@bp.route(f"/appointments/{ID}", methods=["DELETE"])
@requires("records:write")
@bp.response(200, AppointmentOut, description="cancelled (or cancelled already)")
@bp.alt_response(409, description="a missed visit cannot be cancelled")
def cancel_appointment(external_id: str):
    """Cancel an appointment: its waiting reminders are skipped. The record stays."""
    from outbound.appointment_changes import AppointmentChangeRefused, cancel

    try:
        with current_services().sessions.begin() as session:
            found = row_id(session, g.caller.clinic_id, "appointment", external_id)
            if found is None:
                _not_found("appointment", external_id)
            cancel(session, found, utcnow())
            return _appointment_out(session, session.get(Appointment, found), g.caller.clinic_id)
    except AppointmentChangeRefused as exc:
        abort(problems.problem(409, str(exc)))


def _prescription_out(session: Session, prescription: Prescription, clinic_id: int) -> dict:
    return {**{k: getattr(prescription, k) for k in PrescriptionOut._declared_fields
               if k not in ("patient", "external_id")},
            "external_id": external_ids(session, clinic_id, "prescription", [prescription.id]).get(prescription.id),
            "patient": external_ids(session, clinic_id, "patient", [prescription.patient_id]).get(prescription.patient_id)}


@bp.route(f"/prescriptions/{ID}", methods=["PUT"])
@requires("records:write")
@bp.arguments(PrescriptionIn)
@bp.response(200, PrescriptionOut, description="updated (or unchanged)")
@bp.alt_response(201, schema=PrescriptionOut, description="created")
@bp.alt_response(409, description="a prescription stays with its patient")
def put_prescription(body: dict, external_id: str):
    """Create or update a prescription. A later refill_due_on records a fill (refills_left, when
    left out, counts one down, as `ivr prescriptions refilled` does); any change of it ends the
    prompts planned for the old day; active false stops it."""
    clinic_id = g.caller.clinic_id
    with current_services().sessions.begin() as session:
        clinic = session.get(Clinic, clinic_id)
        written = _written(lambda: write_prescription(session, clinic, external_id, body, utcnow()))
        return _prescription_out(session, written.row, clinic_id), 201 if written.created else 200


@bp.route(f"/prescriptions/{ID}", methods=["GET"])
@requires("records:read")
@bp.response(200, PrescriptionOut)
def get_prescription(external_id: str):
    """Read a prescription."""
    with read_only(current_services().sessions()) as session:
        found = row_id(session, g.caller.clinic_id, "prescription", external_id)
        if found is None:
            _not_found("prescription", external_id)
        return _prescription_out(session, session.get(Prescription, found), g.caller.clinic_id)


@bp.route(f"/prescriptions/{ID}", methods=["DELETE"])
@requires("records:write")
@bp.response(200, PrescriptionOut, description="stopped (or stopped already)")
def stop_prescription(external_id: str):
    """Stop a prescription: no more refill prompts, and it is not offered for refill."""
    from ivr import touches

    with current_services().sessions.begin() as session:
        found = row_id(session, g.caller.clinic_id, "prescription", external_id)
        if found is None:
            _not_found("prescription", external_id)
        prescription = session.get(Prescription, found, with_for_update={"key_share": True})
        if prescription.active:
            prescription.active = False
            touches.end_refill_prompts(session.connection(), prescription.id, "prescription stopped", utcnow())
        return _prescription_out(session, prescription, g.caller.clinic_id)


