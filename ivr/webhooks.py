"""Routes Twilio calls. Thin: parse, verify, load, call the engine, store, render."""

from __future__ import annotations

import logging
import re
import traceback
from collections import ChainMap
from dataclasses import replace
from typing import Callable

from flask import Blueprint, Response, abort, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

import call_flows
import prompts
from call_flows import Answered, DialResult, Keys, Silence, Step
from call_flows import twiml
from call_flows.twiml import TwimlContext, render
from ivr import answers, calls
from ivr.inbound import queue as caller_queue, voicemail
from ivr.config import is_e164
from ivr.db import run_transaction
from ivr.errors import ConcurrentChange
from ivr.models import Call, Escalation, utcnow
from ivr.prompt_audio import PromptPlayer, voice_for
from ivr.security import require_twilio_signature
from ivr.db import read_only
from ivr.services import current_services
from outbound import staff_ringing
from outbound.callbacks import enqueue_call_back_soon, queue_call_back_soon
from outbound.recordings import queue_deletion_soon, queue_sweep_soon
from outbound.texts import queue_text_back_soon, queue_texts_soon

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/twilio")
bp.before_request(require_twilio_signature)

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
# Our ids are INTEGER columns (32 bits on PostgreSQL): a larger number names no row, and must be
# a plain 404 rather than an overflow inside the database.
MAX_ROW_ID = 2**31 - 1
DIGITS = re.compile(r"[0-9*#]{1,32}")
DIAL_STATUSES = {"completed", "answered", "busy", "no-answer", "failed", "canceled"}
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
    """Keys or silence, plus what the audit trail records about it. (A key that ended a
    recording arrives as Digits too; Record reports a hang-up as Digits=hangup.)"""
    digits = request.form.get("Digits", "")
    if not digits or digits == "hangup":
        return Silence(), {"silence": True}
    if not DIGITS.fullmatch(digits):
        abort(400, description="Digits may hold only 0-9, * and #")
    return Keys(digits), {"digits": digits}


def _phone_number(name: str) -> str | None:
    """A number field as we keep it: E.164, else nothing (a withheld number, a SIP or client
    address, or letters shifted in from another parameter say nothing we can call back)."""
    value = request.form.get(name, "")
    return value if is_e164(value) else None


def _answered_turn() -> int | None:
    """The turn number in an action URL: which question this request answers (400 if garbled)."""
    value = request.args.get("turn")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        abort(400, description="turn must be a whole number")
    return int(value)


def _spoken_input(sid: str, recording_url: str, answered: int | None) -> tuple[call_flows.CallerInput, dict]:
    """Recognise a recorded answer against the current question's grammar, outside any write
    transaction (fetching and recognising take tens of milliseconds). An answer to an earlier
    question is not recognised at all: the turn will refuse it."""
    services = current_services()
    try:
        with services.sessions() as session:
            call = calls.load_call(session, sid)
        if call is None:
            return Silence(), {"silence": True}
        if not call.answers_current_question(answered):
            return Silence(), {"speech": {"skipped": "stale"}}
        language = calls.context_for(call).catalogue.language
        intents = call_flows.listening(call.flow, call.state)
        if len(intents) == 1 and intents[0] in answers.SPOKEN_VALUES:
            spoken, audit = answers.recognise_value(services.recordings, services.settings.speech_models,
                                                    recording_url, language, intents[0])
        else:
            spoken, audit = answers.recognise(services.recordings, services.settings.speech_models,
                                              recording_url, language, intents)
    except Exception as exc:  # noqa: BLE001 - the caller is asked again rather than cut off
        _log_failure(sid, exc)
        spoken, audit = call_flows.Spoken(None), {"speech": {"error": type(exc).__name__}}
    audit["speech"]["recording_sid"] = request.form.get("RecordingSid")
    return spoken, audit


def _takes_message(sid: str, answered: int | None) -> bool:
    """Whether this recording answers a question that takes a message for staff."""
    try:
        with current_services().sessions() as session:
            call = calls.load_call(session, sid)
    except Exception as exc:  # noqa: BLE001 - the turn itself will fail over
        _log_failure(sid, exc)
        return False
    return (call is not None and call.answers_current_question(answered)
            and call_flows.takes_message(call.flow, call.state))


def _message_input(sid: str, recording_url: str) -> tuple[call_flows.CallerInput, dict]:
    """Keep a caller's message on this machine before the turn (the carrier's copy is deleted
    after it); the audit trail notes its id and length, never its words."""
    services = current_services()
    try:
        message, seconds = voicemail.keep(services.recordings, services.settings.voicemail_dir, recording_url)
    except voicemail.VoicemailError as exc:
        _log_failure(sid, exc)
        return Silence(), {"message": {"error": type(exc).__name__}}
    return call_flows.Recorded(message, seconds), {"message": {"id": message, "seconds": seconds}}


@bp.post(f"/voice/outbound/<int(max={MAX_ROW_ID}):touch_id>")
def outbound_answer(touch_id: int) -> Response:
    """Answer URL of an outbound call placed for a touch: the flow's first words."""
    sid, answered_by = _call_sid(), _answered_by()

    def load(session: Session) -> calls.CallRecord | None:
        call = calls.load_call(session, sid, lock=True)
        if call is None:  # the carrier answered before the job recorded the SID
            if not calls.open_outbound_call(session, sid, touch_id, status="in-progress",
                                            from_number=_phone_number("From"),
                                            to_number=_phone_number("To")):
                abort(404, description="no such touch")
            call = calls.load_call(session, sid, lock=True)
        return call

    return _turn(sid, load, lambda call, facts: call_flows.start(call.flow, Answered(answered_by), facts),
                 {"answered_by": answered_by}, answered=0)


@bp.post("/voice/inbound")
def inbound_answer() -> Response:
    """Voice URL of the clinics' numbers: a patient is calling us."""
    sid, to_number = _call_sid(), request.form.get("To", "")

    def load(session: Session) -> calls.CallRecord | None:
        if not calls.open_inbound_call(session, sid, to_number=to_number,
                                       from_number=_phone_number("From")):
            return None
        return calls.load_call(session, sid, lock=True)

    return _turn(sid, load, lambda call, facts: call_flows.start(call.flow, Answered(), facts),
                 {"inbound": True}, answered=0, unknown=_not_in_service)


def _not_in_service() -> str:
    """A call to a number no clinic uses: say so and hang up."""
    log.warning("inbound call to a number no clinic uses")
    catalogue = prompts.load("en")
    response = VoiceResponse()
    response.say(catalogue.text("inbound.unknown_number", {}), language=catalogue.say_language)
    response.hangup()
    return str(response)


@bp.post("/voice/dial")
def dial_result() -> Response:
    """Action URL of a transfer: how the call to staff ended."""
    sid = _call_sid()
    status = request.form.get("DialCallStatus", "")
    if status not in DIAL_STATUSES:
        abort(400, description="DialCallStatus is missing or unknown")
    audit = {"dial_status": status}
    if status == "completed":
        try:
            with current_services().sessions() as session:
                if calls.staff_passed(session, sid):
                    # Staff answered only to pass it: nobody took the call.
                    status, audit = "no-answer", {"dial_status": "completed", "staff": "passed"}
        except Exception as exc:  # noqa: BLE001 - the turn itself fails over if the database is down
            _log_failure(sid, exc)
    return _turn(sid, lambda session: calls.load_call(session, sid, lock=True),
                 lambda call, facts: call_flows.step(call.flow, call.state, DialResult(status), facts),
                 audit, answered=_answered_turn())


@bp.post("/voice/whisper")
def whisper() -> Response:
    """What staff hear before a transfer connects (the Number url=); says nothing about patients."""
    parent = request.form.get("ParentCallSid", "")
    key = request.args.get("prompt", "")
    if not CALL_SID.fullmatch(parent) or not key.startswith("inbound.whisper") \
            or key not in prompts.load("en").texts:
        abort(400, description="ParentCallSid or prompt is missing, malformed or unknown")
    english = prompts.load("en")
    try:
        with current_services().sessions() as session:
            call = calls.load_call(session, parent)
        # Staff hear the clinic's language whatever the caller's, and the caller's first name
        # only once the caller was identified (the whisper prompts before that name nobody).
        # Then what the line already did for the caller, so nobody asks them twice. Staff take
        # the call with 1, or pass it with 2 or by waiting: the caller is then offered the next
        # staff line or a call back (the Dial ends as not answered).
        did = [f"inbound.did_{thing}" for thing in (call.state.get("did", ()) if call is not None else ())]
        xml = _staff_question(call, (key, *did, "inbound.staff_choice"), url_for("twilio.whisper_answer"))
    except Exception as exc:  # noqa: BLE001 - staff must still hear something, or the transfer drops
        _log_failure(parent, exc)
        response = VoiceResponse()
        response.say(english.text(key, {}), language=english.say_language)
        xml = str(response)
    return _twiml(xml)


def _staff_question(call: calls.CallRecord | None, keys: tuple[str, ...], action: str) -> str:
    """TwiML asking staff one key about a caller, in the clinic's language (the caller's values,
    their first name among them, only as the prompts use them), then hanging up if none comes."""
    catalogue = prompts.first_available(call.row["clinic_language"]) if call is not None else prompts.load("en")
    values = calls.context_for(call).values if call is not None else {}
    services = current_services()
    player = PromptPlayer(services.prompt_audio, services.settings.public_base_url, catalogue, values,
                          voice_for(catalogue))
    return render((call_flows.Ask(keys, timeout=STAFF_CHOICE_SECONDS), call_flows.Hangup()),
                  TwimlContext(text=lambda k: catalogue.text(k, values), say_language=catalogue.say_language,
                               step_url=action, transfer_number=None, audio_url=player),
                  redirect_after_ask=False)


# How long staff have to press 1 (take the call) after the whisper.
STAFF_CHOICE_SECONDS = 8


@bp.post("/voice/whisper/answer")
def whisper_answer() -> Response:
    """Staff answered the whisper's question: 1 puts the caller through, anything else passes.
    The choice is noted on the caller's call."""
    parent = request.form.get("ParentCallSid", "")
    if not CALL_SID.fullmatch(parent):
        abort(400, description="ParentCallSid is missing or malformed")
    caller_input, _audit = _caller_input()
    accepted = isinstance(caller_input, Keys) and caller_input.digits[:1] == "1"
    try:
        run_transaction(current_services().sessions,
                        lambda session: calls.record_staff_choice(session, parent, accepted))
    except Exception as exc:  # noqa: BLE001 - the choice still stands when it cannot be noted
        _log_failure(parent, exc)
    response = VoiceResponse()
    if not accepted:
        response.hangup()
    return _twiml(str(response))


@bp.post(f"/voice/callback/<int(max={MAX_ROW_ID}):escalation_id>")
def callback_answer(escalation_id: int) -> Response:
    """Staff answered the call-back call: who asked (the first name only of a caller who was
    identified), then 1 to call them now."""
    english = prompts.load("en")
    try:
        with current_services().sessions() as session:
            found = calls.call_back_of(session, escalation_id)
        if found is None:
            abort(404, description="no such call back")
        call, verified = found
        key = "inbound.callback_whisper_patient" if verified else "inbound.callback_whisper"
        xml = _staff_question(call, (key,), url_for("twilio.callback_accept", escalation_id=escalation_id))
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - staff hear why nothing happens; a task is owed
        _log_failure(_call_sid(), exc)
        response = VoiceResponse()
        response.say(english.text("common.apology_call_again", {}), language=english.say_language)
        response.hangup()
        xml = str(response)
    return _twiml(xml)


@bp.post(f"/voice/callback/<int(max={MAX_ROW_ID}):escalation_id>/accept")
def callback_accept(escalation_id: int) -> Response:
    """Staff pressed a key: 1 dials the caller from the clinic's number; anything else hangs up
    (the status callback then leaves the call back to a person, as a task)."""
    caller_input, _audit = _caller_input()
    response = VoiceResponse()
    if not (isinstance(caller_input, Keys) and caller_input.digits[:1] == "1"):
        response.hangup()
        return _twiml(str(response))
    staff_sid = _call_sid()

    def claim(session: Session):
        found = calls.call_back_of(session, escalation_id)
        if found is None or not calls.can_call_back(found[0].row["call_from"], found[0].row["clinic_phone"]):
            return None
        # Only the staff call this call back placed, and only once: a replay, or a call back
        # already failed to a task, dials nobody.
        return found if calls.start_connecting(session, escalation_id, staff_sid) else None

    found = run_transaction(current_services().sessions, claim)
    if found is None:
        response.hangup()
        return _twiml(str(response))
    call, _verified = found
    dial = response.dial(action=url_for("twilio.callback_result", escalation_id=escalation_id), method="POST",
                         caller_id=call.row["clinic_phone"])
    dial.number(call.row["call_from"])
    return _twiml(str(response))


@bp.post(f"/voice/callback/<int(max={MAX_ROW_ID}):escalation_id>/result")
def callback_result(escalation_id: int) -> Response:
    """How the call to the caller ended: connected, or a task for a person."""
    status = request.form.get("DialCallStatus", "")
    if status not in DIAL_STATUSES:
        abort(400, description="DialCallStatus is missing or unknown")
    run_transaction(current_services().sessions,
                    lambda session: calls.finish_call_back(session, escalation_id, connected=status == "completed"))
    response = VoiceResponse()
    response.hangup()
    return _twiml(str(response))


@bp.post(f"/status/callback/<int(max={MAX_ROW_ID}):escalation_id>")
def callback_status(escalation_id: int) -> Response:
    """The staff call ended: if it never connected the caller, a person owes them a call."""
    status = request.form.get("CallStatus", "")
    if status not in calls.STATUS_RANK:
        abort(400, description="CallStatus is missing or unknown")
    if status in calls.TERMINAL:
        try:
            run_transaction(current_services().sessions,
                            lambda session: calls.finish_call_back(session, escalation_id, connected=False,
                                                                   staff_call_ended=True))
        except Exception as exc:  # noqa: BLE001 - reconcile fails a call back left dialling to a task
            _log_failure(_call_sid(), exc)
            return Response(status=503)
    return Response(status=204)


# How long each pass of the queue's wait waits for the call-back key (then the carrier asks again,
# and the caller hears their place anew).
QUEUE_KEY_SECONDS = 20
TAKING_PAUSE_SECONDS = 2  # staff pressed 1: the carrier is about to bridge them


@bp.post("/voice/queue/wait")
def queue_wait() -> Response:
    """What a caller waiting in the queue hears, again and again: their place in line, the
    expected wait, and (when we can ring them) 1 to be called back instead. After every staff line
    was tried, or the clinic's longest wait, they leave the queue (<Leave>)."""
    sid = _call_sid()
    waited = request.form.get("QueueTime", "0")
    if not waited.isdigit() or len(waited) > 9:
        abort(400, description="QueueTime is malformed")
    services = current_services()
    first: list[int | None] = []

    def work(session: Session):
        first.clear()
        now = utcnow()
        escalation = caller_queue.escalation_of_call(session, sid)
        if escalation is not None and escalation.queue_status == "taken" \
                and not caller_queue.taken_too_long(escalation, now):
            return "taken"
        if escalation is None or escalation.queue_status != caller_queue.WAITING \
                or caller_queue.waiting_too_long(session, escalation, int(waited)):
            return None
        if int(waited) >= caller_queue.longest_wait(session, escalation.clinic_id):
            return "taken"  # too long, but staff took them this very moment: being put through
        call = calls.load_call(session, sid)
        if call is None:
            return None
        place = caller_queue.place_in_line(session, escalation, now)
        if place == 1:  # staff are rung for the first caller; their every wait asks again
            first.append(escalation.clinic_id)
        return call, place, caller_queue.expected_wait_minutes(session, escalation.clinic_id, place, now)

    response = VoiceResponse()
    try:
        found = run_transaction(services.sessions, work)
    except Exception as exc:  # noqa: BLE001 - a caller who cannot be told their place still waits
        _log_failure(sid, exc)
        response.pause(length=QUEUE_KEY_SECONDS)
        return _twiml(str(response))
    if found is None:
        response.leave()
        return _twiml(str(response))
    if found == "taken":  # staff are taking the caller out of the queue this moment
        response.pause(length=TAKING_PAUSE_SECONDS)
        return _twiml(str(response))
    call, place, minutes = found
    keys = ["inbound.queue_next" if place == 1 else "inbound.queue_one_ahead" if place == 2 else "inbound.queue_ahead"]
    if minutes is not None:
        keys.append("inbound.queue_wait_minute" if minutes <= 1 else "inbound.queue_wait_minutes")
    offer = ("inbound.queue_call_back",) if calls.can_call_back(call.row["call_from"], call.row["clinic_phone"]) else ()
    context = calls.context_for(call, services.settings.fallback_staff_number)
    context = replace(context, values=ChainMap({"ahead": str(place - 1), "wait_minutes": str(minutes or "")},
                                               context.values))
    speaker = _Speaker(context)
    answer = _twiml(render((*(call_flows.Say(k) for k in keys), call_flows.Ask(offer, timeout=QUEUE_KEY_SECONDS)),
                           TwimlContext(text=speaker.text, say_language=context.catalogue.say_language,
                                        step_url=url_for("twilio.queue_key"), transfer_number=None,
                                        audio_url=speaker.audio_url, slow=context.senior),
                           redirect_after_ask=False))
    if first:
        answer.call_on_close(lambda: staff_ringing.ring_soon(services, first[0]))
    return answer


@bp.post("/voice/queue/key")
def queue_key() -> Response:
    """A key pressed while waiting: 1 keeps the caller's place and ends the wait for a call back
    (<Leave>; the flow hears it at the queue's action URL). Anything else: they go on waiting."""
    sid = _call_sid()
    caller_input, _audit = _caller_input()
    response = VoiceResponse()
    if not (isinstance(caller_input, Keys) and caller_input.digits[:1] == "1"):
        return _twiml(str(response))

    def choose(session: Session):
        escalation = caller_queue.escalation_of_call(session, sid)
        call = calls.load_call(session, sid)
        if escalation is None or call is None \
                or not calls.can_call_back(call.row["call_from"], call.row["clinic_phone"]):
            return None
        return (escalation.id, escalation.clinic_id) \
            if caller_queue.choose_call_back(session, escalation.id, utcnow()) else None

    services = current_services()
    chosen = run_transaction(services.sessions, choose)
    if chosen is None:
        return _twiml(str(response))
    response.leave()
    answer = _twiml(str(response))
    # The call back stands from now on, even if the caller hangs up before the queue reports
    # that they left; the next caller in line is rung for.
    answer.call_on_close(lambda: (enqueue_call_back_soon(services, chosen[0]),
                                  staff_ringing.ring_soon(services, chosen[1])))
    return answer


@bp.post("/voice/queue/left")
def queue_left() -> Response:
    """Action URL of the queue: the caller left it (taken by staff, chose a call back, nobody
    took them in time, or hung up); the flow decides what follows."""
    sid, answered = _call_sid(), _answered_turn()
    queue_result = request.form.get("QueueResult", "")
    if queue_result not in caller_queue.QUEUE_RESULTS:
        abort(400, description="QueueResult is missing or unknown")
    heard: list[str] = []

    def load(session: Session) -> calls.CallRecord | None:
        call = calls.load_call(session, sid, lock=True)
        heard[:] = [caller_queue.left(session, sid, queue_result)]
        return call

    response = _turn(sid, load, lambda call, facts: call_flows.step(call.flow, call.state,
                                                                    call_flows.LeftQueue(heard[0]), facts),
                     {"queue_result": queue_result}, answered=answered)
    services, clinic_id, queue_sid = current_services(), _clinic_of(sid), request.form.get("QueueSid", "")
    response.call_on_close(lambda: (staff_ringing.ring_soon(services, clinic_id),   # the next caller in line
                                    staff_ringing.delete_queue_soon(services, queue_sid)))
    return response


def _clinic_of(call_sid: str) -> int | None:
    """The clinic a call came to, or None when it cannot be told now."""
    try:
        with current_services().sessions() as session:
            return session.scalar(select(Call.clinic_id).where(Call.call_sid == call_sid))
    except Exception as exc:  # noqa: BLE001 - only a nudge to ring for the next caller
        _log_failure(call_sid, exc)
        return None


@bp.post(f"/voice/queue/staff/<int(max={MAX_ROW_ID}):escalation_id>/<int(max=99):line>")
def queue_staff(escalation_id: int, line: int) -> Response:
    """A staff line rung for a waiting caller answered: why the caller is coming (their first name
    only once identified), what the line already did for them, then 1 to take them, 2 to pass."""
    staff_sid = _call_sid()

    def look(session: Session):
        escalation = session.get(Escalation, escalation_id)
        if escalation is None:
            return None
        call = session.get(Call, escalation.call_id)
        record = calls.load_call(session, call.call_sid)
        return record, escalation.reason, caller_queue.rings_for(session, escalation_id, line, staff_sid)

    try:
        found = run_transaction(current_services().sessions, look)
    except Exception as exc:  # noqa: BLE001 - staff hear that nothing can be done; the flow goes on
        _log_failure(staff_sid, exc)
        return _twiml(_staff_hear(None, "inbound.queue_caller_gone"))
    if found is None:
        abort(404, description="no such escalation")
    call, reason, ringing = found
    if call is None or not ringing:
        return _twiml(_staff_hear(call, "inbound.queue_caller_gone"))
    did = [f"inbound.did_{thing}" for thing in call.state.get("did", ())]
    whisper = call_flows.inbound.WHISPERS.get(reason, "inbound.whisper")
    return _twiml(_staff_question(call, (whisper, *did, "inbound.staff_choice"),
                                  url_for("twilio.queue_staff_choice", escalation_id=escalation_id, line=line)))


def _staff_hear(call: calls.CallRecord | None, key: str) -> str:
    """TwiML telling staff one thing in the clinic's language, then hanging up."""
    catalogue = prompts.first_available(call.row["clinic_language"]) if call is not None else prompts.load("en")
    response = VoiceResponse()
    response.say(catalogue.text(key, {}), language=catalogue.say_language)
    response.hangup()
    return str(response)


@bp.post(f"/voice/queue/staff/<int(max={MAX_ROW_ID}):escalation_id>/<int(max=99):line>/choice")
def queue_staff_choice(escalation_id: int, line: int) -> Response:
    """Staff answered the whisper: 1 takes the caller out of their queue (<Dial><Queue>); 2, or
    no key, passes (the staff call's end rings the next line)."""
    staff_sid = _call_sid()
    caller_input, _audit = _caller_input()
    accepted = isinstance(caller_input, Keys) and caller_input.digits[:1] == "1"
    now = utcnow()
    response = VoiceResponse()
    if not accepted:
        try:
            run_transaction(current_services().sessions,
                            lambda session: caller_queue.note_pass(session, escalation_id, line, staff_sid, now))
        except Exception as exc:  # noqa: BLE001 - the pass stands when it cannot be noted
            _log_failure(staff_sid, exc)
        response.hangup()
        return _twiml(str(response))
    services = current_services()
    name = run_transaction(services.sessions, lambda session: caller_queue.take(
        session, escalation_id, line, staff_sid, _phone_number("To"), now))
    if name is None:
        return _twiml(_staff_hear(None, "inbound.queue_caller_gone"))
    # The caller left their queue the moment before? Then the Dial gives up soon.
    dial = response.dial(timeout=STAFF_DIAL_SECONDS)
    dial.queue(name)
    answer = _twiml(str(response))
    clinic_id = _clinic_of_escalation(escalation_id)
    answer.call_on_close(lambda: staff_ringing.ring_soon(services, clinic_id))  # the next caller in line
    return answer


# How long staff who took a caller wait for the carrier to bridge them.
STAFF_DIAL_SECONDS = 10


def _clinic_of_escalation(escalation_id: int) -> int | None:
    try:
        with current_services().sessions() as session:
            return session.scalar(select(Escalation.clinic_id).where(Escalation.id == escalation_id))
    except Exception as exc:  # noqa: BLE001 - only a nudge to ring for the next caller
        _log_failure(_call_sid(), exc)
        return None


@bp.post(f"/status/queue/<int(max={MAX_ROW_ID}):escalation_id>/<int(max=99):line>")
def queue_staff_status(escalation_id: int, line: int) -> Response:
    """A staff call rung for a waiting caller ended: if it did not take them, ring the next line."""
    status = request.form.get("CallStatus", "")
    if status not in calls.STATUS_RANK:
        abort(400, description="CallStatus is missing or unknown")
    if status in calls.TERMINAL:
        try:
            staff_ringing.staff_call_ended(current_services(), escalation_id, line, _call_sid())
        except Exception as exc:  # noqa: BLE001 - the caller's wait ends at the clinic's longest wait
            _log_failure(_call_sid(), exc)
            return Response(status=503)
    return Response(status=204)


@bp.post("/voice/step")
def voice_step() -> Response:
    """Action URL of every question, and the Redirect that follows it when the caller is silent."""
    sid, answered = _call_sid(), _answered_turn()
    caller_input, audit = _caller_input()
    recording = _note_recording(sid)
    recording_url = request.form.get("RecordingUrl", "")
    if recording_url and _takes_message(sid, answered):
        # A message for staff is kept even when the caller hung up to end it.
        caller_input, audit = _message_input(sid, recording_url)
    elif isinstance(caller_input, Silence) and recording_url and request.form.get("Digits") != "hangup":
        caller_input, audit = _spoken_input(sid, recording_url, answered)
    response = _turn(sid, lambda session: calls.load_call(session, sid, lock=True),
                     lambda call, facts: call_flows.step(call.flow, call.state, caller_input, facts),
                     audit, answered=answered)
    if recording is not None:  # heard (or not needed): it goes from the carrier, after we answered
        redis = current_services().redis
        response.call_on_close(lambda: queue_deletion_soon(redis, recording))
    return response


def _recording_sid() -> str | None:
    """The recording a Record action reports: RecordingSid, else the last part of RecordingUrl."""
    recording_sid = request.form.get("RecordingSid")
    if recording_sid is None and request.form.get("RecordingUrl"):
        recording_sid = request.form["RecordingUrl"].rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    if recording_sid is not None and not RECORDING_SID.fullmatch(recording_sid):
        abort(400, description="RecordingSid is malformed")
    return recording_sid


def _note_recording(sid: str) -> int | None:
    """Note a Record answer's recording before anything else, so that whatever happens next it
    is deleted at the carrier; its row id, or None when the request carries no recording. (If
    even this fails, the sweep after the call ends finds the recording at the carrier.)"""
    recording_sid = _recording_sid()
    if recording_sid is None:
        return None
    services = current_services()
    try:
        with services.sessions.begin() as session:
            call_id = session.scalar(select(Call.id).where(Call.call_sid == sid))
            return calls.note_recording(session, recording_sid, call_id)
    except Exception as exc:  # noqa: BLE001 - the caller must still be answered
        _log_failure(sid, exc)
        return None


# A turn that lost a race (a duplicate answer, staff changing the appointment) is run again on
# what is there now; more than a few in a row would mean something is wrong, not busy.
CONCURRENT_RETRIES = 3


def _turn(sid: str, load: Callable[[Session], calls.CallRecord | None],
          make_step: Callable[[calls.CallRecord, dict], Step], audit: dict, *, answered: int | None,
          unknown: Callable[[], str] | None = None) -> Response:
    """One turn in one transaction: load (locked), step, render, record. A request that answers
    an earlier question (a duplicate or a replay) changes nothing and hears the current question
    again. Any failure still answers TwiML."""
    services = current_services()
    planned_call_back: list[bool] = []
    queued: list[int | None] = []
    texts_to_send: list[int] = []

    def work(session: Session) -> str:
        planned_call_back.clear()
        queued.clear()
        texts_to_send.clear()
        call = load(session)
        if call is None:
            if unknown is not None:
                return unknown()
            log.warning("call %s: step for a call we have no record of", sid)
            return _failure_twiml(services.settings.fallback_staff_number)
        if not call.answers_current_question(answered):
            log.info("call %s: answer to turn %s while on turn %s: repeated", sid, answered, call.number)
            # Which question a stale answer answered is not known: where any question asks for
            # personal data, none of its content is kept.
            kept = _redacted(audit) if call_flows.asks_personal_data(call.flow) else audit
            calls.record_stale_answer(session, call, answered, kept)
            return call.last_twiml or twiml.hangup()
        fallback, models, now = services.settings.fallback_staff_number, services.settings.speech_models, utcnow()
        call = calls.follow_next_appointment(session, call, now)
        if call_flows.sensitive(call.flow, call.state):
            audit_of_input = _redacted(audit)
        else:
            audit_of_input = audit
        turn = calls.turn_for(session, call, fallback, models, now)
        step = make_step(call, turn.facts)
        if step.effects or step.state.get("language") != call.state.get("language"):
            # An identified caller or a chosen language changes the words of this very step.
            call = calls.apply_before_speaking(session, call, step, now)
            turn = calls.turn_for(session, call, fallback, models, now, state=step.state)
        context = turn.context
        speaker = _Speaker(context)
        following = call.number + 1  # the turn the caller's next answer will answer
        xml = render(step.actions, TwimlContext(
            text=speaker.text, say_language=context.catalogue.say_language,
            step_url=url_for("twilio.voice_step", turn=following), transfer_number=context.staff_number,
            dial_url=url_for("twilio.dial_result", turn=following),
            whisper_url=lambda key: url_for("twilio.whisper", prompt=key), audio_url=speaker.audio_url,
            say_language_for=speaker.say_language, slow=context.senior, staff_numbers=context.staff_numbers,
            queue_name=caller_queue.queue_name(sid), queue_action_url=url_for("twilio.queue_left", turn=following),
            queue_wait_url=url_for("twilio.queue_wait"), pharmacy_number=context.pharmacy_number))
        texts_to_send.extend(calls.record_step(session, call, step, audit_of_input, twiml=xml, said=speaker.said))
        planned_call_back.extend(isinstance(e, call_flows.PlanCallBack) for e in step.effects)
        if any(isinstance(a, call_flows.Enqueue) for a in step.actions):
            queued.append(call.row["clinic_id"])
        return xml

    try:
        for attempt in range(CONCURRENT_RETRIES + 1):
            try:
                response = _twiml(run_transaction(services.sessions, work))
                if any(planned_call_back):  # committed: the worker may ring staff now
                    response.call_on_close(lambda: queue_call_back_soon(services, sid))
                if queued:  # the caller waits in their queue: staff are rung for the first in line
                    response.call_on_close(lambda: staff_ringing.ring_soon(services, queued[0]))
                if texts_to_send:  # committed: a confirmation the patient was promised
                    response.call_on_close(lambda: queue_texts_soon(services.redis, list(texts_to_send)))
                return response
            except ConcurrentChange:
                if attempt == CONCURRENT_RETRIES:
                    raise
                log.info("call %s: changed by someone else during the turn; running it again", sid)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - a caller must never hear "an application error"
        _log_failure(sid, exc)
        return _twiml(_fail_call(sid, exc))


def _redacted(audit: dict) -> dict:
    """What the audit trail keeps of an answer that is personal data (a date of birth): that it
    came and how, never what it said."""
    kept: dict = {}
    if "digits" in audit:
        kept["digits"] = f"{len(audit['digits'])} digits, not kept"
    if "speech" in audit:
        kept["speech"] = {k: v for k, v in audit["speech"].items() if k not in ("text", "value")}
    if "silence" in audit:
        kept["silence"] = audit["silence"]
    return kept


class _Speaker:
    """How one turn says its prompts: in the call's language and voice, and a prompt marked for
    another language (the inbound line's language offer) in that language's own words and voice."""

    def __init__(self, context: calls.CallContext) -> None:
        self.context = context
        self.players: dict[str | None, PromptPlayer] = {None: _player(context)}

    def _catalogue(self, language: str | None) -> prompts.Catalogue:
        return self.context.catalogue if language is None else prompts.load(language)

    def text(self, key: str) -> str:
        language, plain = call_flows.split_language(key)
        # Another language's prompt is a clinic prompt: it names nobody.
        return self._catalogue(language).text(plain, self.context.values if language is None else {})

    def say_language(self, key: str) -> str:
        return self._catalogue(call_flows.split_language(key)[0]).say_language

    def audio_url(self, key: str) -> str | None:
        language, plain = call_flows.split_language(key)
        if language not in self.players:
            services, catalogue = current_services(), prompts.load(language)
            self.players[language] = PromptPlayer(services.prompt_audio, services.settings.public_base_url,
                                                  catalogue, {}, voice_for(catalogue))
        return self.players[language](plain)

    @property
    def said(self) -> list[str]:
        """The prompts said by the carrier's voice because no audio was rendered for them."""
        return [key if language is None else call_flows.in_language(key, language)
                for language, player in self.players.items() for key in player.said]


def _player(context: calls.CallContext) -> PromptPlayer:
    """Plays a call's prompts from the audio rendered for it, in the patient's voice and rate."""
    services = current_services()
    return PromptPlayer(services.prompt_audio, services.settings.public_base_url, context.catalogue,
                        context.values, voice_for(context.catalogue, context.speech_rate))


def _fail_call(sid: str, error: BaseException) -> str:
    """Record the failure in a fresh transaction; apologise and transfer (or promise a call-back)."""
    services = current_services()
    staff = services.settings.fallback_staff_number or None
    try:
        with services.sessions.begin() as session:
            call = calls.load_call(session, sid, lock=True)
            if call is not None:
                staff = call.staff_number or staff
                # The call-back promise is made only here, where its task is recorded with it.
                xml = _failure_twiml(staff, can_promise=True)
                calls.record_failure(session, call, error, call_flows.failure(bool(staff)), xml)
                return xml
    except Exception as audit_error:  # noqa: BLE001 - the database itself may be what failed
        _log_failure(sid, audit_error)
    return _failure_twiml(staff)


def _failure_twiml(staff_number: str | None, can_promise: bool = False) -> str:
    """Apology and transfer, in English: nothing else may be trusted. Without staff to transfer
    to, a call-back is promised only when its task is being recorded; else the caller is asked
    to call again."""
    catalogue = prompts.load("en")
    failure = call_flows.failure(bool(staff_number), can_promise)
    context = TwimlContext(text=lambda key: catalogue.text(key, {}), say_language=catalogue.say_language,
                           step_url=url_for("twilio.voice_step"), transfer_number=staff_number,
                           dial_url=url_for("twilio.failover_dial_result"))
    try:
        return render(failure.actions, context)
    except Exception as exc:  # noqa: BLE001
        _log_failure("-", exc)
        return twiml.hangup()


@bp.post("/voice/fallback")
def voice_fallback() -> Response:
    """Twilio's fallback URL, asked when a call's URL failed (an error, a timeout, a document that
    is not TwiML): an apology and a transfer to the clinic's staff, found by the clinic's number
    if the database answers, else the configured fallback staff number; without either, the
    caller is asked to call again. Nothing else of the database is trusted."""
    from ivr.models import Clinic

    error, sid = request.form.get("ErrorCode", "-"), request.form.get("CallSid", "-")
    staff = None
    # The clinic's number: what an inbound caller rang, or what a reminder came from.
    number = request.form.get("To" if request.form.get("Direction") == "inbound" else "From")
    try:
        # Read-only: on SQLite it takes no write lock, which may be what made the call's URL fail.
        with read_only(current_services().sessions()) as session:
            staff = session.scalar(select(Clinic.staff_phone).where(Clinic.phone == number,
                                                                    Clinic.staff_phone.is_not(None)))
    except Exception as exc:  # noqa: BLE001  (the database may be what failed)
        log.warning("call %s: fallback could not read the clinic (%s)", sid, type(exc).__name__)
    log.warning("call %s: fallback URL asked after carrier error %s", sid, error[:10])
    return _twiml(_failure_twiml(staff or current_services().settings.fallback_staff_number or None))


@bp.post("/voice/failover-dial")
def failover_dial_result() -> Response:
    """How the transfer after a failure ended. Reads no database (it may be what failed), so it
    cannot loop back into the failure: staff answered, or the caller is asked to call again."""
    status = request.form.get("DialCallStatus", "")
    if status not in DIAL_STATUSES:
        abort(400, description="DialCallStatus is missing or unknown")
    response = VoiceResponse()
    if status not in ("completed", "answered"):
        # No database here, so no task: nothing is promised.
        catalogue = prompts.load("en")
        response.say(catalogue.text("common.apology_call_again", {}), language=catalogue.say_language)
    response.hangup()
    log.info("call %s: transfer after a failure ended %s", request.form.get("CallSid", "-"), status)
    return _twiml(str(response))


def _log_failure(call_sid: str, exc: BaseException) -> None:
    """Log where a step failed without its message or locals, which may hold PHI."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("call %s: step failed with %s\n%s", call_sid, type(exc).__name__, frames)


@bp.post("/status")
@bp.post(f"/status/outbound/<int(max={MAX_ROW_ID}):touch_id>")
@bp.post(f"/status/outbound/<int(max={MAX_ROW_ID}):touch_id>/<int(max=1000):attempt>")
def status_callback(touch_id: int | None = None, attempt: int | None = None) -> Response:
    """Call progress from the carrier: idempotent, and never moves a call backwards."""
    sid, answered_by = _call_sid(), _answered_by()
    status = request.form.get("CallStatus", "")
    if status not in calls.STATUS_RANK:
        abort(400, description="CallStatus is missing or unknown")
    services = current_services()
    try:
        applied = run_transaction(services.sessions, lambda session: calls.apply_status(
            session, sid, status, answered_by, touch_id=touch_id, attempt=attempt))
    except Exception as exc:  # noqa: BLE001 - log the type only: messages may carry numbers
        _log_failure(sid, exc)
        return Response(status=503)
    log.info("call %s status %s %s", sid, status, "applied" if applied else "ignored")
    response = Response(status=204)
    if applied and status in calls.TERMINAL:  # the call is over: nothing of it may stay recorded,
        response.call_on_close(lambda: queue_sweep_soon(services, sid))
        # and a caller nobody served hears from us by text.
        response.call_on_close(lambda: queue_text_back_soon(services, sid))
    return response
