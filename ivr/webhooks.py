"""Routes Twilio calls. Thin: parse, verify, load, call the engine, store, render."""

from __future__ import annotations

import logging
import re
import traceback

from flask import Blueprint, Response, abort, request, url_for
from twilio.twiml.voice_response import VoiceResponse

import call_flows
import prompts
from call_flows import Answered, Keys, Silence, Step
from call_flows.twiml import Voice, render
from ivr import calls
from ivr.models import Call, CallEvent, Touch
from ivr.security import require_twilio_signature
from ivr.services import current_services

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/twilio")
bp.before_request(require_twilio_signature)

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
DIGITS = re.compile(r"[0-9*#]{1,32}")
ANSWERED_BY = {"human", "machine_start", "machine_end_beep", "machine_end_silence",
               "machine_end_other", "fax", "unknown"}


def _twiml(xml: str) -> Response:
    return Response(xml, mimetype="text/xml")


def _call_sid() -> str:
    """The CallSid form field; a request without a well-formed one is not from Twilio (400)."""
    sid = request.form.get("CallSid", "")
    if not CALL_SID.fullmatch(sid):
        abort(400, description="CallSid is missing or malformed")
    return sid


def _answered_by() -> str | None:
    value = request.form.get("AnsweredBy") or None
    if value is not None and value not in ANSWERED_BY:
        abort(400, description="AnsweredBy has an unknown value")
    return value


def _caller_input() -> tuple[call_flows.CallerInput, dict]:
    """Keys or silence, plus what the audit trail records about it."""
    digits = request.form.get("Digits", "")
    if not digits:
        return Silence(), {"silence": True}
    if not DIGITS.fullmatch(digits):
        abort(400, description="Digits may hold only 0-9, * and #")
    return Keys(digits), {"digits": digits}


@bp.post("/voice/outbound/<int:touch_id>")
def outbound_answer(touch_id: int) -> Response:
    """Answer URL of an outbound call placed for a touch: the flow's first words."""
    sid, answered_by = _call_sid(), _answered_by()
    services = current_services()
    with services.sessions.begin() as session:
        touch = session.get(Touch, touch_id)
        if touch is None:
            abort(404, description="no such touch")
        call = calls.open_outbound_call(session, sid, touch, status="in-progress",
                                        from_number=request.form.get("From"),
                                        to_number=request.form.get("To"))
        return _run(session, call, lambda: call_flows.start(call.flow, Answered(answered_by)),
                    {"answered_by": answered_by} if answered_by else None)


@bp.post("/voice/step")
def voice_step() -> Response:
    """Action URL of every question, and the Redirect that follows it when the caller is silent."""
    sid = _call_sid()
    caller_input, audit = _caller_input()
    services = current_services()
    with services.sessions.begin() as session:
        call = calls.get_call(session, sid)
        if call is None:
            log.warning("step for unknown call %s", sid)
            return _twiml(_failure_twiml(services.settings.fallback_staff_number))
        return _run(session, call, lambda: call_flows.step(call.flow, call.state, caller_input), audit)


def _run(session, call: Call, make_step, audit: dict | None) -> Response:
    """Run one engine step and store it; any failure still answers valid TwiML."""
    services = current_services()
    try:
        context = calls.context_for(call, services.settings.fallback_staff_number)
        step: Step = make_step()
        voice = Voice(text=lambda key: context.catalogue.text(key, context.values),
                      say_language=context.catalogue.say_language,
                      step_url=url_for("twilio.voice_step"), transfer_number=context.staff_number)
        xml = render(step.actions, voice)
        with session.begin_nested():
            calls.record_step(session, call, step, audit)
        return _twiml(xml)
    except Exception as exc:  # noqa: BLE001 - a caller must never hear "an application error"
        _log_failure(call.call_sid, exc)
        staff = _staff_number_of(call) or services.settings.fallback_staff_number
        try:
            with session.begin_nested():
                failure = call_flows.failure(bool(staff))
                session.add(CallEvent(call=call, kind="error",
                                      detail={"error": type(exc).__name__, "prompts": failure.prompts()}))
                call.outcome = failure.outcome
                call.state = dict(failure.state)
        except Exception as audit_exc:  # noqa: BLE001
            _log_failure(call.call_sid, audit_exc)
        return _twiml(_failure_twiml(staff))


def _staff_number_of(call: Call) -> str | None:
    try:
        return call.touch.appointment.patient.clinic.staff_phone
    except Exception:  # noqa: BLE001 - the record itself may be what failed
        return None


def _failure_twiml(staff_number: str | None) -> str:
    """Apology and transfer (or a call-back promise), in English: nothing else may be trusted."""
    catalogue = prompts.load("en")
    failure = call_flows.failure(bool(staff_number))
    voice = Voice(text=lambda key: catalogue.text(key, {}), say_language=catalogue.say_language,
                  step_url=url_for("twilio.voice_step"), transfer_number=staff_number)
    try:
        return render(failure.actions, voice)
    except Exception as exc:  # noqa: BLE001
        _log_failure("-", exc)
        response = VoiceResponse()
        response.hangup()
        return str(response)


def _log_failure(call_sid: str, exc: BaseException) -> None:
    """Log where a step failed without its message or locals, which may hold PHI."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("call %s: step failed with %s\n%s", call_sid, type(exc).__name__, frames)


@bp.post("/status")
@bp.post("/status/outbound/<int:touch_id>")
def status_callback(touch_id: int | None = None) -> Response:
    """Call progress from the carrier: idempotent, and never moves a call backwards."""
    sid, answered_by = _call_sid(), _answered_by()
    status = request.form.get("CallStatus", "")
    if status not in calls.STATUS_RANK:
        abort(400, description="CallStatus is missing or unknown")
    services = current_services()
    with services.sessions.begin() as session:
        touch = session.get(Touch, touch_id) if touch_id is not None else None
        if touch_id is not None and touch is None:
            abort(404, description="no such touch")
        applied = calls.apply_status(session, sid, status, answered_by, touch=touch)
    log.info("call %s status %s %s", sid, status, "applied" if applied else "ignored")
    return Response(status=204)
