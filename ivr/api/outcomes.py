"""What became of each contact, and the tasks people owe patients: read a page at a time,
oldest change first, with a cursor that carries on where the last page ended."""

from __future__ import annotations

import base64
import datetime as dt
import json

from flask import abort, g
from flask_smorest import Blueprint
from sqlalchemy import and_, func, or_, select

from ivr.api import problems
from ivr.api.schemas import CallPage, MessagePage, OutcomePage, PageArgs, TaskPage
from ivr.api.tokens import requires
from ivr.db import read_only
from ivr.external_refs import external_ids
from ivr.models import Appointment, Call, Message, Patient, Task, Touch, utcnow
from ivr.services import current_services

bp = Blueprint("outcomes", __name__, description="Outcomes of calls and texts, and tasks for staff")
bp.register_error_handler(Exception, problems.unexpected)


def _encode(moment: dt.datetime, row: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([moment.isoformat(), row]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[dt.datetime, int]:
    """The (time, id) a cursor stands for, or a 400 problem."""
    try:
        moment, row = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = dt.datetime.fromisoformat(moment)
        if moment.tzinfo is None or not isinstance(row, int) or isinstance(row, bool) or not 0 < row < 2**63:
            raise ValueError
        return moment.astimezone(dt.timezone.utc), row
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
        abort(problems.problem(400, "the cursor is not one this server gave"))


# A change is listed once it is this old. Its time is taken when its transaction writes it, not
# when it commits: a page read at once could pass over a change still committing with an earlier
# time, and the cursor would never come back for it. Transactions here last well under this.
SETTLED = dt.timedelta(seconds=30)


def _after(column, id_column, args: dict):
    """Rows changed at or after `since`, past the cursor and settled, in (time, id) order."""
    conditions = [column <= utcnow() - SETTLED]
    if args["since"] is not None:
        conditions.append(column >= args["since"].astimezone(dt.timezone.utc))
    if args["cursor"] is not None:
        moment, row = _decode(args["cursor"])
        conditions.append(or_(column > moment, and_(column == moment, id_column > row)))
    return conditions


def _page(rows: list, limit: int, moment_of, id_of=lambda row: row.id) -> tuple[list, str | None]:
    """The page's rows and the cursor after its last, when more follow."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_encode(moment_of(rows[-1]), id_of(rows[-1])) if more else None)


@bp.route("/outcomes", methods=["GET"])
@requires("outcomes:read")
@bp.arguments(PageArgs, location="query")
@bp.response(200, OutcomePage)
def list_outcomes(args: dict):
    """Every planned contact of the clinic's patients: its state, how the last call ended, and
    its appointment's status now; oldest change first, from 30 seconds after it was made."""
    with read_only(current_services().sessions()) as session:
        items, cursor = outcome_items(session, g.caller.clinic_id, args)
    return {"items": items, "next_cursor": cursor}


def outcome_items(session, clinic_id: int, args: dict) -> tuple[list[dict], str | None]:
    """A page of the clinic's contacts as /outcomes lists them, and the cursor after it."""
    query = (select(Touch).join(Patient, Patient.id == Touch.patient_id)
             .where(Patient.clinic_id == clinic_id, *_after(Touch.updated_at, Touch.id, args))
             .order_by(Touch.updated_at, Touch.id).limit(args["limit"] + 1))
    touches, cursor = _page(session.scalars(query).all(), args["limit"], lambda t: t.updated_at)
    ids = [t.id for t in touches]
    results = dict(session.execute(select(Call.touch_id, Call.outcome).where(Call.touch_id.in_(ids))
                                   .order_by(Call.id)).all()) if ids else {}
    statuses = dict(session.execute(select(Appointment.id, Appointment.status).where(
        Appointment.id.in_({t.appointment_id for t in touches if t.appointment_id}))).all()) if touches else {}
    patients = external_ids(session, clinic_id, "patient", (t.patient_id for t in touches))
    appointments = external_ids(session, clinic_id, "appointment", (t.appointment_id for t in touches))
    prescriptions = external_ids(session, clinic_id, "prescription", (t.prescription_id for t in touches))
    items = [{"id": t.id, "patient": patients.get(t.patient_id), "appointment": appointments.get(t.appointment_id),
              "prescription": prescriptions.get(t.prescription_id), "step": t.step, "channel": t.channel,
              "status": t.status, "attempts": t.attempts, "result": results.get(t.id),
              "appointment_status": statuses.get(t.appointment_id), "updated_at": t.updated_at,
              "patient_id": t.patient_id, "appointment_id": t.appointment_id,
              "prescription_id": t.prescription_id, "dispatched_at": t.dispatched_at}
             for t in touches]
    return items, cursor


@bp.route("/tasks", methods=["GET"])
@requires("outcomes:read")
@bp.arguments(PageArgs, location="query")
@bp.response(200, TaskPage)
def list_tasks(args: dict):
    """The clinic's tasks (call-backs, refill and reschedule requests, ...): each when it was
    opened, and again when it was closed; oldest change first."""
    clinic_id = g.caller.clinic_id
    changed = func.coalesce(Task.closed_at, Task.created_at)
    with read_only(current_services().sessions()) as session:
        query = (select(Task, changed.label("changed")).where(Task.clinic_id == clinic_id,
                                                              *_after(changed, Task.id, args))
                 .order_by(changed, Task.id).limit(args["limit"] + 1))
        rows, cursor = _page(session.execute(query).all(), args["limit"], lambda row: row.changed,
                             lambda row: row.Task.id)
        tasks = [row.Task for row in rows]
        patients = external_ids(session, clinic_id, "patient", (t.patient_id for t in tasks))
        appointments = external_ids(session, clinic_id, "appointment", (t.appointment_id for t in tasks))
        prescriptions = external_ids(session, clinic_id, "prescription", (t.prescription_id for t in tasks))
        items = [{"id": t.id, "kind": t.kind, "status": t.status, "patient": patients.get(t.patient_id),
                  "appointment": appointments.get(t.appointment_id),
                  "prescription": prescriptions.get(t.prescription_id), "due_at": t.due_at,
                  "created_at": t.created_at, "closed_at": t.closed_at} for t in tasks]
    return {"items": items, "next_cursor": cursor}


@bp.route("/calls", methods=["GET"])
@requires("outcomes:read")
@bp.arguments(PageArgs, location="query")
@bp.response(200, CallPage)
def list_calls(args: dict):
    """The clinic's calls, in and out: how each went and what came of it (no numbers; the patient
    by the clinic's id once known); each when it began, and again when it ended."""
    clinic_id = g.caller.clinic_id
    changed = func.coalesce(Call.ended_at, Call.created_at)
    with read_only(current_services().sessions()) as session:
        query = (select(Call, changed.label("changed")).where(Call.clinic_id == clinic_id,
                                                              *_after(changed, Call.id, args))
                 .order_by(changed, Call.id).limit(args["limit"] + 1))
        rows, cursor = _page(session.execute(query).all(), args["limit"], lambda row: row.changed,
                             lambda row: row.Call.id)
        calls = [row.Call for row in rows]
        patients = external_ids(session, clinic_id, "patient", (c.patient_id for c in calls))
        appointments = external_ids(session, clinic_id, "appointment", (c.appointment_id for c in calls))
        items = [{"id": c.id, "direction": c.direction, "flow": c.flow, "status": c.status, "outcome": c.outcome,
                  "answered_by": c.answered_by, "patient": patients.get(c.patient_id),
                  "appointment": appointments.get(c.appointment_id), "contact": c.touch_id,
                  "created_at": c.created_at, "ended_at": c.ended_at} for c in calls]
    return {"items": items, "next_cursor": cursor}


@bp.route("/messages", methods=["GET"])
@requires("outcomes:read")
@bp.arguments(PageArgs, location="query")
@bp.response(200, MessagePage)
def list_messages(args: dict):
    """The clinic's texts, in and out: their kind and state (never their words or numbers: those
    stay here), oldest change first."""
    clinic_id = g.caller.clinic_id
    with read_only(current_services().sessions()) as session:
        query = (select(Message).where(Message.clinic_id == clinic_id, *_after(Message.updated_at, Message.id, args))
                 .order_by(Message.updated_at, Message.id).limit(args["limit"] + 1))
        texts, cursor = _page(session.scalars(query).all(), args["limit"], lambda m: m.updated_at)
        patients = external_ids(session, clinic_id, "patient", (m.patient_id for m in texts))
        appointments = external_ids(session, clinic_id, "appointment", (m.appointment_id for m in texts))
        items = [{"id": m.id, "direction": m.direction, "kind": m.kind, "status": m.status, "segments": m.segments,
                  "patient": patients.get(m.patient_id), "appointment": appointments.get(m.appointment_id),
                  "contact": m.touch_id, "created_at": m.created_at, "updated_at": m.updated_at} for m in texts]
    return {"items": items, "next_cursor": cursor}
