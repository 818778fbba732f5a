"""Sending texts: one job per message, with a deterministic id (a text is never sent twice). The
job claims the message (planned -> submitting), refuses what must not go (a number that opted
out, a landline), hands it to the carrier, and raises on a carrier outage so rq retries."""

from __future__ import annotations

import datetime as dt
import logging

from redis import Redis
from rq import Queue, Retry, get_current_job
from sqlalchemy import select, update

from ivr.errors import PermanentSendError, UncertainSendError
from ivr.messaging import texts
from ivr.models import Message, utcnow
from ivr.services import current_services
from ivr.telephony import TextRequest
from outbound.queueing import enqueue_once, has_live_job, outbound_queue

log = logging.getLogger(__name__)
RETRY = Retry(max=3, interval=[30, 120, 600])
# How late a text may still go: a reminder within the hour its touch was allowed to ring; an
# answer while the conversation is fresh; a missed-call text the same afternoon.
STALE_AFTER = {"reminder": dt.timedelta(hours=1), "no_show": dt.timedelta(hours=1), "refill": dt.timedelta(hours=1),
               "reply": dt.timedelta(hours=2), "text_back": dt.timedelta(hours=4)}
# The carrier's error codes that say the number itself will not take our texts.
OPTED_OUT_AT_CARRIER = 21610
NOT_TEXTABLE = {21614: "not a mobile number", 21211: "not a valid phone number"}


def job_id_for_text(message_id: int) -> str:
    """The one job id a text can ever have."""
    return f"text-{message_id}"


def enqueue_text(queue: Queue, message_id: int) -> bool:
    """Queue a text's sending; False if it was already queued."""
    return enqueue_once(queue, "outbound.texts.send_text", message_id, job_id_for_text(message_id),
                        f"send text {message_id}", RETRY)


def queue_texts_soon(redis: Redis, message_ids: list[int]) -> None:
    """Queue texts from a request; if Redis is not there, reconcile queues them later."""
    try:
        queue = outbound_queue(redis)
        for message_id in message_ids:
            enqueue_text(queue, message_id)
    except Exception as exc:  # noqa: BLE001 - the rows remain; reconcile sends them
        log.warning("texts %s not queued (%s); reconcile will queue them", message_ids, type(exc).__name__)


def send_text(message_id: int) -> str | None:
    """The job: send one planned text; its carrier SID, or None when it was not sent."""
    services = current_services()
    with services.sessions.begin() as session:
        if not session.execute(update(Message).where(Message.id == message_id, Message.status == "planned")
                               .values(status="submitting")).rowcount:
            log.info("text %s is not planned; nothing to send", message_id)
            return None
        message = session.get(Message, message_id)
        reason = _reason_not_to_send(session, message)
        if reason:
            message.status, message.reason = "refused", reason
            texts.note(session, message_id, "refused", reason=reason)
            log.info("text %s refused: %s", message_id, reason)
            return None
        request = TextRequest(to=message.to_number, from_=message.from_number, body=message.body,
                              status_callback=f"{services.settings.public_base_url}/twilio/sms/status/{message_id}")
    try:
        sid = services.messenger.send_text(request)
    except PermanentSendError as exc:
        _refused_by_carrier(message_id, exc)
        return None
    except UncertainSendError as exc:
        _settle(message_id, "uncertain", str(exc))  # it may have gone: never sent again on our own
        return None
    except Exception as exc:
        last_try = not (get_current_job() and get_current_job().retries_left)
        _settle(message_id, "failed" if last_try else "planned", f"{type(exc).__name__}: {exc}"[:200])
        raise
    with services.sessions.begin() as session:
        # Forward only: a status callback may already have moved it on.
        session.execute(update(Message).where(Message.id == message_id, Message.status == "submitting")
                        .values(status="queued"))
        session.execute(update(Message).where(Message.id == message_id).values(message_sid=sid))
        texts.note(session, message_id, "sent_to_carrier", sid=sid)
    log.info("text %s handed to the carrier as %s", message_id, sid)
    return sid


def _reason_not_to_send(session, message: Message) -> str | None:
    """Why this text must not go, or None."""
    if message.kind not in texts.ALWAYS_SENT and texts.opted_out(session, message.clinic_id, message.to_number):
        return "the number opted out"
    if utcnow() - message.created_at > STALE_AFTER.get(message.kind, STALE_AFTER["reply"]):
        # Held back (Redis lost its work, workers were down): a reminder or an answer hours
        # late, perhaps at night or about a visit that has passed, is worse than none.
        return "too late to send"
    if message.appointment_id is not None and message.kind == "reminder":
        from ivr.models import Appointment

        appointment = session.get(Appointment, message.appointment_id)
        if appointment.status != "booked" or appointment.starts_at <= utcnow():
            return f"the appointment is no longer waiting for an answer ({appointment.status})"
    if message.appointment_id is not None and message.kind == "no_show":
        from ivr.models import Appointment

        appointment = session.get(Appointment, message.appointment_id)
        if appointment.status != "no_show":
            return f"the appointment is no longer a missed visit ({appointment.status})"
    if message.touch_id is not None and message.kind == "refill":
        from outbound.planning import refill_not_wanted

        reason = refill_not_wanted(session, message.touch_id, utcnow())
        if reason:
            return reason
    return texts.textable(message.to_number)


def _refused_by_carrier(message_id: int, error: PermanentSendError) -> None:
    """The carrier refused the text; a number that opted out at the carrier is opted out here."""
    services = current_services()
    with services.sessions.begin() as session:
        message = session.get(Message, message_id)
        message.status, message.error_code = "failed", error.code
        message.reason = NOT_TEXTABLE.get(error.code, str(error))[:200]
        texts.note(session, message_id, "refused_by_carrier", code=error.code)
        if error.code == OPTED_OUT_AT_CARRIER and message.clinic_id is not None:
            texts.record_opt_out(session, message.clinic_id, message.to_number, "carrier 21610", message_id)
    log.warning("text %s refused by the carrier (code %s)", message_id, error.code)


def _settle(message_id: int, status: str, error: str) -> None:
    with current_services().sessions.begin() as session:
        message = session.get(Message, message_id)
        message.status, message.reason = status, error[:200]
        texts.note(session, message_id, status, error=error[:200])


def requeue_text_backs(queue: Queue, session, since) -> int:
    """Queue the missed-call text decision of every inbound call that ended since `since` and has
    none yet (its job was lost); returns how many were queued."""
    from ivr.calls import TERMINAL
    from ivr.models import Call, CallEvent

    decided = select(CallEvent.call_id).where(CallEvent.kind == "text_back")
    undecided = session.scalars(select(Call.id).where(Call.direction == "inbound", Call.status.in_(TERMINAL),
                                                      Call.ended_at >= since, Call.id.not_in(decided)))
    return sum(enqueue_text_back(queue, call_id) for call_id in undecided
               if not has_live_job(queue, job_id_for_text_back(call_id)))


def requeue_texts(queue: Queue, session) -> int:
    """Give every planned text a live job (after Redis lost its work); returns how many queued."""
    return sum(enqueue_text(queue, message_id)
               for message_id in session.scalars(select(Message.id).where(Message.status == "planned")
                                                 .order_by(Message.id))
               if not has_live_job(queue, job_id_for_text(message_id)))


def job_id_for_text_back(call_id: int) -> str:
    """The one job id of a call's missed-call text."""
    return f"text-back-{call_id}"


def enqueue_text_back(queue: Queue, call_id: int) -> bool:
    """Queue the missed-call text decision for an inbound call that ended; False if queued already."""
    return enqueue_once(queue, "outbound.texts.text_back", call_id, job_id_for_text_back(call_id),
                        f"missed-call text for call {call_id}", RETRY)


def queue_text_back_soon(services, call_sid: str) -> None:
    """Queue the missed-call text decision for an inbound call that just ended (reconcile queues
    it later if this fails)."""
    from ivr.models import Call

    try:
        with services.sessions() as session:
            call = session.execute(select(Call.id, Call.direction).where(Call.call_sid == call_sid)).one_or_none()
        if call is not None and call.direction == "inbound":
            enqueue_text_back(outbound_queue(services.redis), call.id)
    except Exception as exc:  # noqa: BLE001 - reconcile decides every ended inbound call
        log.warning("call %s: missed-call text not queued (%s)", call_sid, type(exc).__name__)


def text_back(call_id: int) -> str:
    """The job: after an inbound call that ended without being served, text the caller once what
    happens next (a call back within a business day, backed by a task) and the clinic's number;
    at most once a day per number and clinic, never to a number that opted out or cannot take
    texts. Every decision, sent or not and why, goes to the call's audit trail."""
    services = current_services()
    with services.sessions.begin() as session:
        decision = texts.missed_call_text(session, call_id)
    if decision.get("message_id"):
        enqueue_text(outbound_queue(services.redis), decision["message_id"])
    log.info("call %s: missed-call text %s", call_id, decision["decision"])
    return decision["decision"]
