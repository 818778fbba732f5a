"""What became of each contact, and the tasks people owe patients: read a page at a time,
oldest change first, with a cursor that carries on where the last page ended."""

from __future__ import annotations

import base64
import datetime as dt
import json

from flask import abort, g
from flask_smorest import Blueprint
from sqlalchemy import and_, or_, select

from ivr.api import problems
from ivr.api.records import external_ids
from ivr.api.schemas import OutcomePage, PageArgs, TaskPage
from ivr.api.tokens import requires
from ivr.models import Appointment, Call, Patient, Task, Touch
from ivr.services import current_services

bp = Blueprint("outcomes", __name__, description="Outcomes of calls and texts, and tasks for staff")


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
    except (ValueError, TypeError, json.JSONDecodeError):
        abort(problems.problem(400, "the cursor is not one this server gave"))


def _after(column, id_column, args: dict):
    """Rows changed at or after `since` and past the cursor, in (time, id) order."""
    conditions = []
    if args["since"] is not None:
        conditions.append(column >= args["since"].astimezone(dt.timezone.utc))
    if args["cursor"] is not None:
        moment, row = _decode(args["cursor"])
        conditions.append(or_(column > moment, and_(column == moment, id_column > row)))
    return conditions


def _page(rows: list, limit: int, moment_of) -> tuple[list, str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_encode(moment_of(rows[-1]), rows[-1].id) if more else None)


@bp.route("/outcomes", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, OutcomePage)
@requires("outcomes:read")
def list_outcomes(args: dict):
    """Every planned contact of the clinic's patients: its state, how the last call ended, and
    its appointment's status now; oldest change first."""
    with current_services().sessions() as session:
        query = (select(Touch).join(Patient, Patient.id == Touch.patient_id)
                 .where(Patient.clinic_id == g.caller.clinic_id, *_after(Touch.updated_at, Touch.id, args))
                 .order_by(Touch.updated_at, Touch.id).limit(args["limit"] + 1))
        touches, cursor = _page(session.scalars(query).all(), args["limit"], lambda t: t.updated_at)
        ids = [t.id for t in touches]
        results = dict(session.execute(select(Call.touch_id, Call.outcome).where(Call.touch_id.in_(ids))
                                       .order_by(Call.id)).all()) if ids else {}
        statuses = dict(session.execute(select(Appointment.id, Appointment.status).where(
            Appointment.id.in_({t.appointment_id for t in touches if t.appointment_id}))).all()) if touches else {}
        patients = external_ids(session, "patient", (t.patient_id for t in touches))
        appointments = external_ids(session, "appointment", (t.appointment_id for t in touches))
        prescriptions = external_ids(session, "prescription", (t.prescription_id for t in touches))
        items = [{"id": t.id, "patient": patients.get(t.patient_id), "appointment": appointments.get(t.appointment_id),
                  "prescription": prescriptions.get(t.prescription_id), "step": t.step, "channel": t.channel,
                  "status": t.status, "attempts": t.attempts, "result": results.get(t.id),
                  "appointment_status": statuses.get(t.appointment_id), "updated_at": t.updated_at}
                 for t in touches]
    return {"items": items, "next_cursor": cursor}


@bp.route("/tasks", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, TaskPage)
@requires("outcomes:read")
def list_tasks(args: dict):
    """The clinic's tasks (call-backs, refill and reschedule requests, ...), oldest first."""
    with current_services().sessions() as session:
        query = (select(Task).where(Task.clinic_id == g.caller.clinic_id,
                                    *_after(Task.created_at, Task.id, args))
                 .order_by(Task.created_at, Task.id).limit(args["limit"] + 1))
        tasks, cursor = _page(session.scalars(query).all(), args["limit"], lambda t: t.created_at)
        patients = external_ids(session, "patient", (t.patient_id for t in tasks))
        appointments = external_ids(session, "appointment", (t.appointment_id for t in tasks))
        prescriptions = external_ids(session, "prescription", (t.prescription_id for t in tasks))
        items = [{"id": t.id, "kind": t.kind, "status": t.status, "patient": patients.get(t.patient_id),
                  "appointment": appointments.get(t.appointment_id),
                  "prescription": prescriptions.get(t.prescription_id), "due_at": t.due_at,
                  "created_at": t.created_at, "closed_at": t.closed_at} for t in tasks]
    return {"items": items, "next_cursor": cursor}
