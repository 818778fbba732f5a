"""Placing sandbox calls end to end: the web server over real HTTP, a real RQ worker, the real
database. Used by `ivr sandbox call` and by the end-to-end tests."""

from __future__ import annotations

import contextlib
import re
from concurrent.futures import TimeoutError as FuturesTimeout
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from ivr.errors import IvrError
from ivr.models import Appointment, Call, CallEvent, Touch, utcnow
from ivr.sandbox.script import Script, parse as parse_script
from ivr.sandbox.store import SandboxStore


class SandboxCallError(IvrError):
    """A sandbox call could not be placed or did not finish in time."""


@contextlib.contextmanager
def serve(make_app) -> Iterator[tuple[Flask, str]]:
    """Serve make_app(base_url) on a free 127.0.0.1 port in a thread; the app learns its own URL."""
    holder: dict[str, Flask] = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start),
                         threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
    try:
        holder["app"] = make_app(base_url)
        thread.start()
        yield holder["app"], base_url
    finally:
        carrier = holder["app"].extensions.get("ivr_sandbox") if "app" in holder else None
        if carrier is not None:
            carrier.executor.shutdown(wait=True)
        if thread.is_alive():
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()


def sandbox_config(base_url: str) -> dict[str, str]:
    """create_app settings for an app at base_url whose calls go to its own sandbox carrier."""
    return {"PUBLIC_BASE_URL": base_url, "TWILIO_API_URL": f"{base_url}/sandbox", "CARRIER": "sandbox"}


def plan_test_call(sessions, appointment_id: int) -> int:
    """A touch of its own for a test call, running the reminder flow; returns its id."""
    with sessions.begin() as session:
        appointment = session.get(Appointment, appointment_id)
        if appointment is None:
            raise SandboxCallError(f"no appointment with id {appointment_id}")
        earlier = session.scalar(select(func.count()).select_from(Touch)
                                 .where(Touch.appointment_id == appointment_id,
                                        Touch.test_call.is_(True)))
        touch = Touch(appointment=appointment, step=f"test-call-{earlier + 1}", flow="reminder", test_call=True,
                      channel="voice", due_at=utcnow())
        session.add(touch)
        session.flush()
        return touch.id


def patient_phone(sessions, appointment_id: int) -> str:
    with sessions() as session:
        appointment = session.get(Appointment, appointment_id)
        if appointment is None:
            raise SandboxCallError(f"no appointment with id {appointment_id}")
        return appointment.patient.phone


def wait_for_call_sid(sessions, touch_id: int, timeout: float) -> str:
    """The SID the worker got for the touch's call; an error if nothing dialled in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            touch = session.get(Touch, touch_id)
            if touch.call_sid:
                return touch.call_sid
            if touch.status in ("failed", "skipped"):
                raise SandboxCallError(f"the call was not placed: touch {touch.status} ({touch.last_error})")
        time.sleep(0.05)
    raise SandboxCallError(f"no worker placed the call within {timeout:.0f} s; is `ivr worker` running?")


def wait_for_transcript(store: SandboxStore, sid: str, timeout: float) -> dict[str, Any]:
    """The finished transcript of a sandbox call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = store.transcript(sid)
        if found and found.get("done"):
            return found
        time.sleep(0.05)
    raise SandboxCallError(f"call {sid} did not finish within {timeout:.0f} s")


def wait_for_final_status(sessions, sid: str, timeout: float = 10) -> None:
    """Status callbacks may still be in flight when the transcript is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.scalar(select(Call.ended_at).where(Call.call_sid == sid)) is not None:
                return
        time.sleep(0.05)


def outcome(sessions, touch_id: int) -> dict[str, Any]:
    """What the database recorded for a touch's call."""
    with sessions() as session:
        touch = session.get(Touch, touch_id)
        call = session.scalars(select(Call).where(Call.touch_id == touch_id)).first()
        return {"speech": _speech_results(session, call), "touch_id": touch.id, "touch_status": touch.status,
                "appointment_id": touch.appointment_id,
                "appointment_status": touch.appointment.status,
                "call_sid": call.call_sid if call else None,
                "call_status": call.status if call else None,
                "call_outcome": call.outcome if call else None,
                "answered_by": call.answered_by if call else None}


def _speech_results(session, call) -> list[dict[str, Any]]:
    """What the server's recogniser made of each spoken answer on the call, in order."""
    if call is None:
        return []
    events = session.scalars(select(CallEvent).where(CallEvent.call_id == call.id, CallEvent.kind == "step")
                             .order_by(CallEvent.id))
    return [e.detail["input"]["speech"] for e in events if (e.detail.get("input") or {}).get("speech")]


_AUDIO_PATH = re.compile(r"/audio/([0-9a-f]{64})\.wav$")


def annotate_played(app: Flask, transcript: dict[str, Any]) -> dict[str, Any]:
    """Add to each <Play> of our own rendered prompts what it says (from the audio cache's notes),
    so that people and tests can read a transcript. The carrier itself only knows URLs."""
    cache = app.extensions["ivr"].prompt_audio
    for turn in transcript.get("turns", []):
        waits = [p for wait in (turn.get("queue") or {}).get("waits", []) for p in wait.get("prompts", [])]
        for prompt in [*turn.get("prompts", []), *(turn.get("dial") or {}).get("whisper", []), *waits]:
            found = _AUDIO_PATH.search(urlsplit(prompt.get("play", "")).path)
            note = cache.note(found.group(1)) if found else None
            if note:
                prompt["rendered"] = {k: note[k] for k in ("text", "language", "voice", "rate")}
    return transcript


def heard(prompt: dict[str, Any]) -> str | None:
    """The words of one prompt in a transcript: said by the carrier, or played from our audio."""
    return prompt.get("say") or (prompt.get("rendered") or {}).get("text")


@dataclass(frozen=True)
class CallResult:
    """A finished sandbox call: what was heard and done, and what the record says now."""

    transcript: dict[str, Any]
    outcome: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.transcript, "outcome": self.outcome}


def place_reminder_call(app: Flask, appointment_id: int, script: Script, *, run_worker: bool,
                        timeout: float = 60) -> CallResult:
    """Plan a test call for the appointment, give the patient's phone the script, let the queue
    place it (running a worker here when run_worker), and wait for the call to end."""
    from outbound.queueing import enqueue_touch, outbound_queue
    from outbound.worker import AppSimpleWorker
    from ivr.sandbox.carrier import SandboxCarrier

    services = app.extensions["ivr"]
    sessions = services.sessions
    store = SandboxCarrier.store_for(services.settings, services.redis)
    store.set_phone(patient_phone(sessions, appointment_id), script)
    touch_id = plan_test_call(sessions, appointment_id)
    queue = outbound_queue(services.redis)
    enqueue_touch(queue, touch_id)
    if run_worker:
        AppSimpleWorker([queue], connection=services.redis, app=app).work(burst=True)
    sid = wait_for_call_sid(sessions, touch_id, timeout)
    transcript = annotate_played(app, wait_for_transcript(store, sid, timeout))
    wait_for_final_status(sessions, sid)
    if run_worker:  # what the call queued meanwhile: deleting its recordings at the carrier
        AppSimpleWorker([queue], connection=services.redis, app=app).work(burst=True)
    return CallResult(transcript, outcome(sessions, touch_id))


# What a staff phone rung by the worker (the queue's rings, a call back) does, by the caller
# script's `staff`: take the call (1 at the whisper), pass it (2), or not pick up.
_STAFF_PHONES = {"answers": {"replies": ["1"]}, "passes": {"replies": ["2"]},
                 "no-answer": {"answer": "no-answer"}, "busy": {"answer": "busy"}}


@contextlib.contextmanager
def staff_phones_as(app: Flask, to: str, staff: str, override: bool) -> Iterator[None]:
    """For one call: the staff phones of the clinic at `to` behave as `staff` says (those given a
    script of their own keep it, unless override); afterwards they are as they were."""
    from ivr.inbound.queue import staff_numbers
    from ivr.models import Clinic
    from ivr.sandbox.carrier import SandboxCarrier

    services = app.extensions["ivr"]
    store = SandboxCarrier.store_for(services.settings, services.redis)
    with services.sessions() as session:
        clinic = session.scalars(select(Clinic).where(Clinic.phone == to)).first()
        numbers = staff_numbers(session, clinic, services.settings.fallback_staff_number) if clinic else []
    changed = {n: (store.phone(n) if store.has_phone(n) else None) for n in numbers
               if override or not store.has_phone(n)}
    behaviour = parse_script(_STAFF_PHONES[staff.split(",")[0].strip()])
    for number in changed:
        store.set_phone(number, behaviour)
    try:
        yield
    finally:
        for number, before in changed.items():
            if before is None:
                store.forget_phone(number)
            else:
                store.set_phone(number, before)


def place_inbound_call(app: Flask, from_: str, to: str, script: Script, *,
                       timeout: float = 60, run_worker: bool = False, staff_override: bool = False) -> CallResult:
    """Call one of our numbers from a sandbox phone and play the call to its end; with
    run_worker, also do the work the call's end queued (a missed-call text) and show the texts
    that reached the phone. Staff phones the worker rings behave as the script's `staff` says
    (unless given a script of their own, and staff_override is not set)."""
    with staff_phones_as(app, to, script.staff, staff_override):
        return _place_inbound_call(app, from_, to, script, timeout=timeout, run_worker=run_worker)


def _place_inbound_call(app: Flask, from_: str, to: str, script: Script, *,
                        timeout: float, run_worker: bool) -> CallResult:
    from ivr.sandbox.carrier import SandboxCarrier

    services = app.extensions["ivr"]
    carrier = SandboxCarrier(services.settings, services.redis, max_calls=1)
    before = {m["sid"] for m in carrier.store.messages(from_)}  # texts sent during the call count too
    call = carrier.inbound(from_, to)
    try:
        playing = carrier.start(call, script)
        if run_worker:  # staff lines are rung by jobs while the caller waits in the queue
            deadline = time.monotonic() + timeout
            while not playing.done() and time.monotonic() < deadline:
                _work(app)
                time.sleep(0.1)
        transcript = playing.result(timeout=max(0.1, timeout))
    except FuturesTimeout:
        raise SandboxCallError(f"call {call.sid} did not finish within {timeout:.0f} s") from None
    finally:
        carrier.executor.shutdown(wait=False)
    wait_for_final_status(services.sessions, call.sid)
    with services.sessions() as session:
        row = session.scalars(select(Call).where(Call.call_sid == call.sid)).first()
        result = {"call_sid": call.sid, "call_status": row.status if row else transcript.status,
                  "call_outcome": row.outcome if row else None}
    texts = []
    if run_worker:
        texts = _texts_after(app, from_, lambda: _work(app), wait=5, seen=before)
    staff = _staff_calls(app, call.sid)
    return CallResult(annotate_played(app, {**transcript.as_dict(), "done": True, "texts": texts,
                                            "staff_calls": staff}), result)


def _staff_calls(app: Flask, caller_sid: str) -> list[dict[str, Any]]:
    """The calls the worker placed to staff phones for this caller (the queue's rings, a call
    back): whom they rang, what staff heard and pressed, and how each ended."""
    from ivr.models import Escalation
    from ivr.sandbox.carrier import SandboxCarrier

    services = app.extensions["ivr"]
    with services.sessions() as session:
        escalation_id = session.scalar(select(Escalation.id).join(Call, Call.id == Escalation.call_id)
                                       .where(Call.call_sid == caller_sid))
    if escalation_id is None:
        return []
    store = SandboxCarrier.store_for(services.settings, services.redis)
    for_caller = re.compile(rf"/twilio/voice/(queue/staff/{escalation_id}/\d+|callback/{escalation_id})$")
    found = []
    for placed in store.calls():
        if placed["direction"] != "outbound-api" or not for_caller.search(placed["url"]):
            continue
        staff = annotate_played(app, store.transcript(placed["sid"]) or {"turns": []})
        found.append({"to": placed["to"], "status": placed["status"],
                      "heard": [p for turn in staff["turns"] for p in turn.get("prompts", [])],
                      "pressed": [turn["reply"]["value"] for turn in staff["turns"]
                                  if (turn.get("reply") or {}).get("kind") == "keys"],
                      "dial": [turn["dial"] for turn in staff["turns"] if turn.get("dial")]})
    return found


def _work(app: Flask) -> None:
    """Run the queued jobs here and now (a worker in burst mode)."""
    from outbound.queueing import outbound_queue
    from outbound.worker import AppSimpleWorker

    redis = app.extensions["ivr"].redis
    AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)


def _texts_after(app: Flask, phone: str, step, wait: float, seen: set[str] | None = None) -> list[dict[str, Any]]:
    """The texts that reach a sandbox phone while `step` runs, until none has arrived or changed
    for a second, or `wait` seconds have passed."""
    from ivr.sandbox.carrier import SandboxCarrier

    store = SandboxCarrier.store_for(app.extensions["ivr"].settings, app.extensions["ivr"].redis)
    seen = seen if seen is not None else {m["sid"] for m in store.messages(phone)}
    deadline, settled_since, answers = time.monotonic() + wait, None, []
    while time.monotonic() < deadline:
        step()
        now = [m for m in store.messages(phone) if m["to"] == phone and m["sid"] not in seen]
        final = bool(now) and all(m["status"] in ("delivered", "undelivered", "failed") for m in now)
        if now != answers or not final:
            settled_since, answers = (time.monotonic() if final else None), now
        elif time.monotonic() - settled_since > 1:  # nothing new for a second: all said
            break
        time.sleep(0.2)
    return answers


def text_clinic(app: Flask, phone: str, to: str, body: str, wait: float, *, run_worker: bool) -> list[dict[str, Any]]:
    """Text a clinic from a sandbox phone and collect what reaches the phone within `wait`
    seconds: the carrier's own answers to its keywords, and the server's texts (sent by a worker
    run here when run_worker, else by the server's own)."""
    from ivr.sandbox.carrier import SandboxCarrier

    services = app.extensions["ivr"]
    carrier = SandboxCarrier(services.settings, services.redis, max_calls=2)
    seen = {m["sid"] for m in carrier.store.messages(phone)}
    try:
        carrier.texting.text_in(phone, to, body)
        return _texts_after(app, phone, (lambda: _work(app)) if run_worker else (lambda: None), wait, seen)
    finally:
        carrier.executor.shutdown(wait=True)


def describe(result: CallResult) -> str:
    """A transcript people can read: what was said, what the caller did, what changed."""
    call, out = result.transcript, result.outcome
    recognised = list(out.get("speech", []))
    lines = [f"Call {call['sid']}  {call['from']} -> {call['to']}  ({call['direction']})"]
    if call.get("answered_by"):
        lines.append(f"  answered by: {call['answered_by']}")
    for number, turn in enumerate(call["turns"], 1):
        lines.append(f"  [{number}] {turn['url']}")
        for prompt in turn.get("prompts", []):
            if "say" in prompt:
                lines.append(f"      says:   {prompt['say']}")
            elif "rendered" in prompt:
                rendered = prompt["rendered"]
                lines.append(f"      plays:  {rendered['text']}  [{rendered['voice']}, {rendered['rate']} wpm, "
                             f"{prompt.get('seconds', '?')} s]")
            elif "play" in prompt:
                lines.append(f"      plays:  {prompt['play']}" + (f"  ({prompt['error']})" if "error" in prompt else ""))
            elif "pause" in prompt:
                lines.append(f"      pause:  {prompt['pause']} s")
        if turn.get("dial"):
            dial = turn["dial"]
            for prompt in dial.get("whisper", []):
                lines.append(f"      staff hears: {heard(prompt) or prompt.get('play')}")
            lines.append(f"      transfer to {dial['to']}: {dial['status']}")
        if turn.get("queue"):
            queue = turn["queue"]
            from ivr.sandbox.script import Reply

            shown: list[list] = []  # passes that sound the same, said once with how many there were
            for wait in queue.get("waits", []):
                words = " ".join(heard(p) or p.get("play", "") for p in wait.get("prompts", []))
                reply = wait.get("reply") if (wait.get("reply") or {}).get("kind") not in (None, "silence") else None
                if shown and shown[-1][:3] == [wait["position"], words, reply]:
                    shown[-1][3] += 1
                else:
                    shown.append([wait["position"], words, reply, 1])
            for position, words, reply, times in shown:
                lines.append(f"      waits (place {position}){f', {times} times' if times > 1 else ''}: {words}")
                if reply:
                    lines.append(f"      caller: {Reply(**reply).describe()}")
            lines.append(f"      left the queue: {queue.get('result')} after {queue.get('waited', 0)} s")
        if turn.get("reply"):
            from ivr.sandbox.script import Reply

            reply = Reply(**turn["reply"])
            lines.append(f"      caller: {reply.describe()}")
            if reply.kind == "audio" and recognised:
                speech = recognised.pop(0)
                if "error" in speech:
                    lines.append(f"      server heard nothing ({speech['error']})")
                elif speech.get("rejected") and not speech.get("intent"):
                    lines.append(f"      server heard {speech['rejected']!r} but was unsure (confidence "
                                 f"{speech.get('confidence')}, {speech.get('engine')}): not acted on")
                else:
                    lines.append(f"      server heard: {speech.get('text') or speech.get('rejected')!r} -> "
                                 f"{speech.get('intent')} (confidence {speech.get('confidence')}, "
                                 f"{speech.get('engine')})")
        if turn.get("error"):
            lines.append(f"      error:  {turn['error']}")
    lines.append(f"  call status: {call['status']}" + (f" ({call['error']})" if call.get("error") else ""))
    for staff in call.get("staff_calls", []):
        words = " ".join(heard(p) or p.get("play", "") for p in staff["heard"])
        lines.append(f"  staff phone {staff['to']} ({staff['status']}) hears: {words or '-'}")
        for pressed in staff["pressed"]:
            lines.append(f"      staff: presses {pressed}")
        for dial in staff["dial"]:
            lines.append(f"      staff: connected to {'the caller' if dial.get('caller') else dial['to']}: "
                         f"{dial['status']}")
    for text in call.get("texts", []):
        lines.append(f"  text to {text['to']}: {text['body']}  [{text['status']}]")
    if "appointment_id" in out:
        lines.append(f"  recorded: call outcome {out['call_outcome']}, appointment {out['appointment_id']} "
                     f"is {out['appointment_status']}, touch {out['touch_id']} {out['touch_status']}")
    else:
        lines.append(f"  recorded: call outcome {out['call_outcome']}")
    return "\n".join(lines)
