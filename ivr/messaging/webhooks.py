"""Twilio's messaging webhooks: texts patients send us, and how the texts we sent fared. Thin, as
the voice routes are: parse, verify, record, let keywords and conversation flows decide, queue
the replies (sent by jobs once this answer has gone)."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, abort, request
from twilio.twiml.messaging_response import MessagingResponse

import call_flows
import prompts
from ivr import calls
from ivr.db import run_transaction
from ivr.messaging import keywords, texts
from ivr.models import Message
from ivr.security import require_twilio_signature
from ivr.services import current_services
from outbound.texts import OPTED_OUT_AT_CARRIER, queue_texts_soon

log = logging.getLogger(__name__)

bp = Blueprint("twilio_sms", __name__, url_prefix="/twilio/sms")
bp.before_request(require_twilio_signature)

MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
# A text only moves forward, as calls do; callbacks can come twice and out of order.
STATUS_RANK = {"planned": 0, "submitting": 1, "accepted": 2, "scheduled": 2, "queued": 2, "sending": 3,
               "sent": 4, "delivered": 5, "undelivered": 5, "failed": 5, "canceled": 5, "read": 5,
               "refused": 5, "uncertain": 1}
MAX_ROW_ID = 2**31 - 1


def _empty() -> Response:
    """No reply in TwiML: replies are sent by jobs, so that each is recorded and tracked."""
    return Response(str(MessagingResponse()), mimetype="text/xml")


@bp.post("/inbound")
def inbound() -> Response:
    """A text to one of the clinics' numbers."""
    sid, from_, to = request.form.get("MessageSid", ""), request.form.get("From", ""), request.form.get("To", "")
    if not MESSAGE_SID.fullmatch(sid) or not from_ or not to or len(from_) > 20 or len(to) > 20:
        abort(400, description="MessageSid, From or To is missing or malformed")
    body = request.form.get("Body", "")
    services = current_services()
    try:
        queued = run_transaction(services.sessions, lambda session: _take(session, sid, from_, to, body))
    except Exception as exc:  # noqa: BLE001 - a 5xx lets Twilio try the fallback URL; SID only, no words
        log.error("text %s not recorded: %s", sid, type(exc).__name__)
        return Response(status=503)
    response = _empty()
    if queued:
        redis = services.redis
        response.call_on_close(lambda: queue_texts_soon(redis, queued))
    return response


def _take(session, sid: str, from_: str, to: str, body: str) -> list[int]:
    """Record a text and act on it; the ids of the texts to send in reply."""
    clinic = texts.clinic_for_number(session, to)
    patient = texts.patient_for_number(session, clinic.id, from_) if clinic else None
    message_id, new = texts.record_inbound(session, sid=sid, clinic_id=clinic.id if clinic else None, from_=from_,
                                           to=to, body=body, patient_id=patient.id if patient else None)
    if not new:
        return []  # a repeated webhook: the first copy acts on it
    if clinic is None:
        texts.note(session, message_id, "ignored", reason="no clinic has this number")
        log.warning("text %s to a number no clinic uses", message_id)
        return []
    language = patient.language if patient else clinic.language
    meaning = keywords.meaning(body, language)
    texts.note(session, message_id, "meaning", kind=meaning.kind, by_carrier=meaning.by_carrier,
               intent=meaning.intent)
    catalogue = prompts.first_available(language, clinic.language)
    values = {name: make() for name, make in calls.clinic_values(clinic.name, clinic.phone, for_texts=True).items()}

    def reply_once(key: str, kind: str) -> list[int]:
        """An automatic answer, at most once a day per number: two auto-responders must not
        keep answering each other."""
        if texts.answered_today(session, clinic, from_, kind):
            texts.note(session, message_id, "not_answered", reason=f"{kind} answered today already")
            return []
        return [texts.queue_text(session, clinic_id=clinic.id, to=from_, from_=to, kind=kind,
                                 body=texts.text_for(catalogue, key, values),
                                 patient_id=patient.id if patient else None)]

    def to_staff(reason: str) -> None:
        texts.pass_to_staff(session, clinic, from_, patient, message_id, reason)

    waiting = texts.open_conversations(session, clinic.id, from_)
    if meaning.kind == "opt_out":
        if waiting:  # "cancel" to a reminder opts out at the carrier, but may have meant the visit
            to_staff("an opt-out word while a question about an appointment was waiting")
        texts.record_opt_out(session, clinic.id, from_, "sms keyword", message_id)
        # The carrier confirms its own words; ours nobody else knows, so we confirm them.
        return [] if meaning.by_carrier else reply_once("sms.opted_out", "opt_out")
    if meaning.kind == "opt_in":
        texts.record_opt_in(session, clinic.id, from_, message_id)
        if waiting:  # "yes" to a reminder opts in at the carrier, but may have meant the visit
            to_staff("an opt-in word while a question about an appointment was waiting")
        return []  # the carrier answers these words itself
    if meaning.kind == "help":
        return reply_once("sms.help", "help")
    if texts.opted_out(session, clinic.id, from_):
        # No reply may go, but what they wrote (a refill, a question) still reaches a person.
        to_staff("a text from a number that opted out")
        return []
    if len(waiting) > 1 and meaning.intent not in keywords.DIGITS:
        # Several questions wait (a reminder and a refill prompt, say): a word only one of them
        # can take ("C" confirms the visit) answers that one. A digit never does: "1" means
        # something else to each question, and a wrong guess would act on the wrong one.
        meant = [c for c in waiting if call_flows.text_accepts(c.flow, c.state, meaning.intent)]
        waiting = meant if len(meant) == 1 else waiting
    if len(waiting) == 1:
        _step, queued = texts.answer(session, waiting[0], meaning.intent, message_id, to)
        return queued
    # Nobody asked, or several questions wait (a household sharing a phone): a person reads it.
    to_staff("several questions were waiting for this number" if waiting else "nobody asked this number anything")
    return reply_once("sms.passed_to_staff", "passed_to_staff")


@bp.post(f"/status/<int(max={MAX_ROW_ID}):message_id>")
def status(message_id: int) -> Response:
    """How a text we sent fared: idempotent, and never moves a text backwards."""
    new = request.form.get("MessageStatus", "")
    if new not in STATUS_RANK:
        abort(400, description="MessageStatus is missing or unknown")
    code = request.form.get("ErrorCode", "")
    if code and not code.isdigit():
        abort(400, description="ErrorCode must be a number")
    services = current_services()

    def apply(session) -> bool:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or STATUS_RANK[new] <= STATUS_RANK.get(message.status, 0):
            return False
        texts.note(session, message_id, "status", previous=message.status, status=new,
                   error_code=int(code) if code else None)
        message.status = new
        if code:
            message.error_code = int(code)
        if int(code or 0) == OPTED_OUT_AT_CARRIER and message.clinic_id is not None:
            texts.record_opt_out(session, message.clinic_id, message.to_number, "carrier 21610", message_id)
        return True

    try:
        applied = run_transaction(services.sessions, apply)
    except Exception as exc:  # noqa: BLE001 - log the type only: messages may carry numbers
        log.error("text %s: status callback failed with %s", message_id, type(exc).__name__)
        return Response(status=503)
    log.info("text %s status %s %s", message_id, new, "applied" if applied else "ignored")
    return Response(status=204)
