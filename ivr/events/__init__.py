"""Events for the clinic's own systems (appointment confirmed, refill requested, ...), sent to
the webhook endpoints it registered. An event is written as one delivery per endpoint in the
transaction that made the change (an outbox): it exists exactly when the change does, and a
receiver or Redis being down loses nothing. Payloads name records by id, never by name."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import g, has_app_context, has_request_context
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from ivr.errors import IvrError
from ivr.external_refs import external_ids
from ivr.models import EVENT_TYPES, Appointment, Prescription, WebhookDelivery, WebhookEndpoint, utcnow

log = logging.getLogger(__name__)
# Deliveries written by a session's transaction, queued once it commits.
_WRITTEN = "ivr_webhook_deliveries"


class EventError(IvrError):
    """Root of the errors this package raises on purpose."""


def wanted_by(session: Session, clinic_id: int | None, event_type: str) -> list[int]:
    """The clinic's live endpoints that want this event (one indexed query; most clinics have none)."""
    if clinic_id is None:
        return []
    endpoints = session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events).where(
        WebhookEndpoint.clinic_id == clinic_id, WebhookEndpoint.disabled_at.is_(None))).all()
    return [endpoint_id for endpoint_id, wanted in endpoints if wanted == "*" or event_type in wanted.split()]


def emit(session: Session, clinic_id: int | None, event_type: str,
         data: dict[str, Any] | Callable[[], dict[str, Any]]) -> list[int]:
    """Write the event for each of the clinic's endpoints that wants it; returns the deliveries'
    ids. `data` may be a function, called only when some endpoint wants the event. They are
    queued when the session's outermost transaction commits (after the answer, in a request)."""
    if event_type not in EVENT_TYPES:
        raise EventError(f"unknown event type {event_type!r}")
    wanting = wanted_by(session, clinic_id, event_type)
    if not wanting:
        return []
    now = utcnow()
    payload = json.dumps({"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"),
                          "data": data() if callable(data) else data}, separators=(",", ":"), sort_keys=True)
    ids = [session.connection().execute(insert(WebhookDelivery).values(
        endpoint_id=endpoint_id, message_id="msg_" + secrets.token_urlsafe(18), event_type=event_type,
        payload=payload, status="pending", attempts=0, next_attempt_at=now, created_at=now)).inserted_primary_key[0]
        for endpoint_id in wanting]
    session.info.setdefault(_WRITTEN, []).extend(ids)
    return ids


def appointment_data(session: Session, clinic_id: int, appointment_id: int, **more: Any) -> dict[str, Any]:
    """An appointment as events name it: ids (ours and the clinic's), status and time."""
    appointment = session.get(Appointment, appointment_id)
    return {"appointment_id": appointment_id,
            "appointment": external_ids(session, clinic_id, "appointment", [appointment_id]).get(appointment_id),
            "patient_id": appointment.patient_id,
            "patient": external_ids(session, clinic_id, "patient", [appointment.patient_id]).get(appointment.patient_id),
            "status": appointment.status, "starts_at": appointment.starts_at.isoformat(), **more}


def prescription_data(session: Session, clinic_id: int, prescription_id: int, **more: Any) -> dict[str, Any]:
    """A prescription as events name it: ids only (the medication is the clinic's to look up)."""
    prescription = session.get(Prescription, prescription_id)
    return {"prescription_id": prescription_id,
            "prescription": external_ids(session, clinic_id, "prescription", [prescription_id]).get(prescription_id),
            "patient_id": prescription.patient_id,
            "patient": external_ids(session, clinic_id, "patient", [prescription.patient_id]).get(
                prescription.patient_id), **more}


def patient_data(session: Session, clinic_id: int, patient_id: int, **more: Any) -> dict[str, Any]:
    """A patient as events name them: ids only."""
    return {"patient_id": patient_id,
            "patient": external_ids(session, clinic_id, "patient", [patient_id]).get(patient_id), **more}


@event.listens_for(Session, "after_commit")
def _queue_written(session: Session) -> None:
    """Queue the deliveries a transaction wrote, now that they exist: in a request, once the
    answer has gone (Redis must not hold up a caller); elsewhere at once. The reconciler queues
    any this misses (no app, Redis down)."""
    if session.in_nested_transaction():  # a savepoint released: the transaction goes on
        return
    ids = session.info.pop(_WRITTEN, None)
    if not ids or not has_app_context():
        return
    if has_request_context():
        g.setdefault(_WRITTEN, []).extend(ids)
        return
    queue_now(ids)


@event.listens_for(Session, "after_rollback")
def _forget_written(session: Session) -> None:
    """Deliveries of a transaction rolled back were never written (a savepoint rolled back keeps
    the list: an id whose row went with it finds nothing to send)."""
    if not session.in_nested_transaction():
        session.info.pop(_WRITTEN, None)


def queue_now(ids: list[int], services=None) -> None:
    """Queue deliveries' first attempts; a failure is left to the reconciler."""
    try:
        from ivr.services import current_services
        from outbound.event_delivery import queue_delivery
        from outbound.queueing import outbound_queue

        queue = outbound_queue((services or current_services()).redis)
        for delivery_id in ids:
            queue_delivery(queue, delivery_id)
    except Exception as exc:  # noqa: BLE001  (the change committed; the reconciler sends it)
        log.warning("webhook deliveries %s not queued now (%s); the reconciler will", ids, type(exc).__name__)


def init_app(app) -> None:
    """Queue the deliveries a request's transactions wrote once its answer has gone."""
    @app.after_request
    def _queue_after_answer(response):
        ids = g.pop(_WRITTEN, None)
        if ids:
            from ivr.services import current_services

            services = current_services()
            response.call_on_close(lambda: queue_now(ids, services))
        return response


def appointment_changed(session: Session, clinic_id: int | None, appointment_id: int, status: str,
                        channel: str) -> None:
    """The patient confirmed, cancelled or asked to move a visit (on a call or by text)."""
    event_type = f"appointment.{status}"
    if clinic_id is not None and event_type in EVENT_TYPES:
        emit(session, clinic_id, event_type,
             lambda: appointment_data(session, clinic_id, appointment_id, status=status, channel=channel))


# Tasks whose opening is an event for the clinic's systems.
_TASK_EVENTS = {"refill_request": "prescription.refill_requested", "rebook_request": "appointment.no_show_recovered"}


def task_opened(session: Session, clinic_id: int | None, kind: str, task_id: int, *, appointment_id: int | None,
                prescription_id: int | None, channel: str) -> None:
    """A refill asked for, or a missed visit's patient asking to book again."""
    event_type = _TASK_EVENTS.get(kind)
    if clinic_id is None or event_type is None:
        return
    if event_type == "prescription.refill_requested" and prescription_id is not None:
        emit(session, clinic_id, event_type,
             lambda: prescription_data(session, clinic_id, prescription_id, task_id=task_id, channel=channel))
    elif event_type == "appointment.no_show_recovered" and appointment_id is not None:
        emit(session, clinic_id, event_type,
             lambda: appointment_data(session, clinic_id, appointment_id, task_id=task_id, channel=channel))
