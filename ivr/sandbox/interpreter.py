"""Plays one call the way Twilio would: fetch TwiML over HTTP (signed), run its verbs, follow
action URLs, fall through on no input, send status callbacks. The caller follows a Script.

Time is virtual: pauses, rings and waits are recorded, never slept.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import threading
import time
import wave
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import urlencode, urljoin

import requests
import soundfile
from twilio.request_validator import RequestValidator

from ivr.sandbox.script import UNANSWERED, Reply, Script

API_VERSION = "2010-04-01"
WEBHOOK_TIMEOUT = 15  # seconds: Twilio gives up on a webhook after 15 s in total
STAFF_TALK_SECONDS = 30
# A caller in a queue: how long (real time) between passes of the wait document, how many passes
# at most before the carrier drops them (Twilio's system-error), and how many a transcript shows.
QUEUE_POLL_SECONDS = 0.2
QUEUE_MAX_PASSES = 600
QUEUE_PASSES_SHOWN = 12
# A staff call dialling an empty queue waits for a caller this long (real time), then gives up.
QUEUE_DIAL_WAIT_SECONDS = 3.0
SAY_SECONDS = 3  # how long a <Say> takes, in the virtual time of a wait
WAIT_ENDINGS = {"Leave": "leave", "Hangup": "hangup"}  # verbs that end a wait, and how


# A question that takes this many keys or more asks for personal data (a date of birth).
MASKED_DIGITS = 6


@dataclass
class PlacedCall:
    """What the carrier knows about a call when it starts."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str                  # outbound-api or inbound
    url: str
    method: str = "POST"
    status_callback: str | None = None
    status_callback_events: tuple[str, ...] = ()
    machine_detection: str | None = None
    fallback_url: str | None = None     # asked once when a document cannot be had, as Twilio does
    fallback_method: str = "POST"


@dataclass
class Turn:
    """One TwiML document: where it came from, what the caller heard, what the caller did."""

    url: str
    prompts: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    dial: dict[str, Any] | None = None
    queue: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


@dataclass
class Transcript:
    """Everything that happened on a call, for people (text) and programs (JSON)."""

    sid: str
    direction: str
    from_: str
    to: str
    status: str = "queued"
    answered_by: str | None = None
    duration: int = 0
    turns: list[Turn] = field(default_factory=list)
    callbacks: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    fallback: str | None = None  # why the call's fallback URL was asked, when it was

    def as_dict(self) -> dict[str, Any]:
        return {"sid": self.sid, "direction": self.direction, "from": self.from_, "to": self.to,
                "status": self.status, "answered_by": self.answered_by, "duration": self.duration,
                "turns": [t.as_dict() for t in self.turns], "callbacks": self.callbacks,
                "error": self.error, "fallback": self.fallback}


class RecordingStore(Protocol):
    """Where recorded audio goes; returns the RecordingUrl Twilio would send."""

    def save_recording(self, call_sid: str, recording_sid: str, audio: bytes) -> str: ...


class CallControl(Protocol):
    """Changes asked for through the REST API while the call runs (hang up, redirect)."""

    def pending_update(self, call_sid: str) -> dict[str, str] | None: ...


def queue_sid(name: str) -> str:
    """The SID of the queue with this name (one name, one queue, as at Twilio)."""
    return "QU" + hashlib.sha256(name.encode()).hexdigest()[:32]


class QueueBoard(Protocol):
    """The carrier's queues, shared by every call it plays (a caller waits in one while a staff
    call, played elsewhere, takes them out of it)."""

    def join_queue(self, name: str, sid: str) -> None: ...

    def leave_queue(self, name: str, sid: str) -> None: ...

    def queue_place(self, name: str, sid: str) -> tuple[int, int] | None: ...

    def take_from_queue(self, name: str, by: str) -> str | None: ...

    def bridged_to(self, sid: str) -> str | None: ...


class LocalQueues:
    """Queues in this process only (a player used on its own, as in tests of one call)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, list[str]] = {}
        self.bridged: dict[str, str] = {}

    def join_queue(self, name: str, sid: str) -> None:
        with self.lock:
            self.queues.setdefault(name, []).append(sid)

    def leave_queue(self, name: str, sid: str) -> None:
        with self.lock:
            if sid in self.queues.get(name, []):
                self.queues[name].remove(sid)

    def queue_place(self, name: str, sid: str) -> tuple[int, int] | None:
        with self.lock:
            members = self.queues.get(name, [])
            return (members.index(sid) + 1, len(members)) if sid in members else None

    def take_from_queue(self, name: str, by: str) -> str | None:
        with self.lock:
            members = self.queues.get(name, [])
            if not members:
                return None
            sid = members.pop(0)
            self.bridged[sid] = by
            return sid

    def bridged_to(self, sid: str) -> str | None:
        with self.lock:
            return self.bridged.get(sid)


class _Hangup(Exception):
    """The call ends now (caller hung up, Hangup verb, or the carrier gave up)."""

    def __init__(self, status: str = "completed") -> None:
        self.status = status


class CallPlayer:
    """Runs calls against a webhook server over real HTTP, signing each request."""

    def __init__(self, auth_token: str, recordings: RecordingStore, control: CallControl | None = None,
                 http: requests.Session | None = None,
                 on_turn: Callable[[Transcript], None] | None = None, queues: QueueBoard | None = None) -> None:
        self.validator = RequestValidator(auth_token)
        self.recordings, self.control = recordings, control
        self.http, self.on_turn = http, on_turn
        self.queues = queues if queues is not None else LocalQueues()

    # --- the call --------------------------------------------------------------------------

    def play(self, call: PlacedCall, script: Script) -> Transcript:
        """Ring, answer as the script says, run TwiML until the call ends, report the status."""
        run = _Run(self, call, script)
        try:
            return run.play()
        finally:
            if self.http is None:
                run.http.close()


class _Run:
    """One call in progress."""

    def __init__(self, player: CallPlayer, call: PlacedCall, script: Script) -> None:
        self.player, self.call, self.script = player, call, script
        self.transfers = 0  # transfers to staff so far (each takes the script's next staff behaviour)
        self.http = player.http or requests.Session()  # one per call: Sessions are not thread-safe
        self.transcript = Transcript(call.sid, call.direction, call.from_, call.to)
        self.replies_used = 0
        self.bridged_seconds = 0
        self.held_callbacks: list[dict[str, str]] = []
        self.answered = False
        self.fell_back = False  # the fallback URL is asked once a call

    def play(self) -> Transcript:
        self._callback("initiated", "initiated")
        self._callback("ringing", "ringing")
        if self.script.answer in UNANSWERED:
            return self._end(self.script.answer)
        if self.call.machine_detection:
            self.transcript.answered_by = self.script.answer
        self.transcript.status = "in-progress"
        if self.call.direction != "inbound":
            self._answer()
        status = "completed"
        try:
            self._run_from(self.call.url, self.call.method, {})
        except _Hangup as end:
            status = end.status
        return self._end(status)

    def _answer(self) -> None:
        """The answered callback; an inbound call is answered only by a first verb other than Reject."""
        if not self.answered:
            self.answered = True
            self._callback("answered", "in-progress")

    def _end(self, status: str) -> Transcript:
        self.transcript.status = status
        self.transcript.duration = (len(self.transcript.turns) * 5 + self.bridged_seconds
                                    if status == "completed" else 0)
        self._callback("completed", status, CallDuration=str(self.transcript.duration))
        self._flush_callbacks()
        return self.transcript

    # --- webhooks --------------------------------------------------------------------------

    def _params(self, status: str | None = None) -> dict[str, str]:
        params = {"AccountSid": self.call.account_sid, "CallSid": self.call.sid,
                  "From": self.call.from_, "To": self.call.to, "Caller": self.call.from_,
                  "Called": self.call.to, "Direction": self.call.direction,
                  "CallStatus": status or self.transcript.status, "ApiVersion": API_VERSION}
        if self.transcript.answered_by:
            params["AnsweredBy"] = self.transcript.answered_by
        return params

    def _request(self, url: str, method: str, params: dict[str, str]) -> requests.Response:
        """Send a webhook signed exactly as Twilio signs it."""
        method = (method or "POST").upper()
        if method == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            signature = self.player.validator.compute_signature(full, {})
            return self.http.get(full, headers={"X-Twilio-Signature": signature},
                                        timeout=WEBHOOK_TIMEOUT)
        signature = self.player.validator.compute_signature(url, params)
        return self.http.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                     timeout=WEBHOOK_TIMEOUT)

    def _fetch(self, url: str, method: str, extra: dict[str, str], turn: Turn | None = None) -> ET.Element:
        """Fetch a TwiML document; an unusable answer goes to the call's fallback URL, once, with
        what went wrong (ErrorCode, ErrorUrl), else ends the call as Twilio's would."""
        root, code, message = self._document(url, method, {**self._params(), **extra})
        if root is not None:
            return root
        if self.call.fallback_url and not self.fell_back:
            self.fell_back = True
            if turn is not None:
                turn.error = f"{message}; the fallback URL was asked"
            params = {**self._params(), **extra, "ErrorCode": code, "ErrorUrl": url}
            root, _, fallback_message = self._document(self.call.fallback_url, self.call.fallback_method, params)
            if root is not None:
                self.transcript.fallback = message
                return root
            message = f"{message}; the fallback URL too: {fallback_message}"
        return self._application_error(turn, message)

    def _document(self, url: str, method: str, params: dict[str, str]) -> tuple[ET.Element | None, str, str]:
        """(the TwiML document, or None with Twilio's error code and what went wrong)."""
        try:
            response = self._request(url, method, params)
        except requests.Timeout:
            return None, "11205", "webhook timed out"
        except requests.RequestException as exc:
            return None, "11205", f"webhook unreachable: {type(exc).__name__}"
        if response.status_code != 200:
            return None, "11200", f"webhook answered HTTP {response.status_code}"
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            return None, "12100", "webhook answered something that is not XML"
        if root.tag != "Response":
            return None, "12100", f"webhook answered <{root.tag}>, not <Response>"
        return root, "", ""

    def _application_error(self, turn: Turn | None, message: str):
        """Twilio says 'an application error has occurred' and hangs up."""
        self.transcript.error = message
        if turn is not None:
            turn.error = message
        raise _Hangup("completed")

    def _callback(self, event: str, status: str, **extra: str) -> None:
        """A status callback, if the call asked for this event (completed is always sent)."""
        if not self.call.status_callback:
            return
        if event != "completed" and event not in self.call.status_callback_events:
            return
        params = {**self._params(status), "CallStatus": status, "Timestamp": "", **extra}
        if event in self.script.lost_callbacks:
            self.transcript.callbacks.append({"status": status, "answer": "lost"})
            return
        copies = 2 if self.script.duplicate_callbacks else 1
        for _ in range(copies):
            if self.script.reorder_callbacks:
                self.held_callbacks.append(params)
            else:
                self._send_callback(params)

    def _flush_callbacks(self) -> None:
        """Held callbacks go out last first: the order a congested carrier can produce."""
        for params in reversed(self.held_callbacks):
            self._send_callback(params)
        self.held_callbacks.clear()

    def _send_callback(self, params: dict[str, str]) -> None:
        try:
            answer = self._request(self.call.status_callback, "POST", params).status_code
        except requests.RequestException as exc:
            answer = type(exc).__name__
        self.transcript.callbacks.append({"status": params["CallStatus"], "answer": str(answer)})

    # --- TwiML -----------------------------------------------------------------------------

    def _run_from(self, url: str, method: str, extra: dict[str, str]) -> None:
        """Fetch and run documents until one ends the call; each fetch is a turn."""
        while True:
            if len(self.transcript.turns) >= self.script.max_turns:
                self.transcript.error = f"stopped after {self.script.max_turns} turns"
                raise _Hangup("completed")
            update = self.player.control.pending_update(self.call.sid) if self.player.control else None
            if update:
                if update.get("Status") in ("completed", "canceled"):
                    raise _Hangup("completed")
                if update.get("Url"):
                    url, method, extra = update["Url"], update.get("Method", "POST"), {}
            turn = Turn(url=url)
            self.transcript.turns.append(turn)
            document = self._fetch(url, method, extra, turn)
            next_request = self._run_document(document, url, turn)
            if self.player.on_turn:
                self.player.on_turn(self.transcript)
            if next_request is None:
                raise _Hangup("completed")  # Twilio hangs up when a document runs out of verbs
            url, method, extra = next_request

    def _run_document(self, document: ET.Element, url: str, turn: Turn):
        """Run verbs in order; returns the next request (url, method, params) or None."""
        for index, verb in enumerate(document):
            if verb.tag != "Reject":
                self._answer()
            handler = getattr(self, f"_verb_{verb.tag.lower()}", None)
            if handler is None:
                self._application_error(turn, f"unknown verb <{verb.tag}>")
            result = handler(verb, url, turn, first=(index == 0))
            if result is not None:
                return result
        return None

    def _say(self, verb: ET.Element, url: str, turn: Turn) -> None:
        if verb.tag == "Say":
            turn.prompts.append({"say": (verb.text or "").strip(),
                                 "language": verb.get("language", "en-US")})
        elif verb.tag == "Play":
            prompt = {"play": urljoin(url, (verb.text or "").strip())} if (verb.text or "").strip() else {}
            if prompt:
                prompt.update(self._fetch_media(prompt["play"]))
            if verb.get("digits"):
                prompt["digits"] = verb.get("digits")
            turn.prompts.append(prompt)
        elif verb.tag == "Pause":
            turn.prompts.append({"pause": int(verb.get("length", "1"))})

    def _fetch_media(self, url: str) -> dict[str, Any]:
        """Fetch a <Play> file as Twilio does (a plain GET): its length, or why it cannot play.
        Twilio plays nothing for a file it cannot fetch or decode, and goes on to the next verb."""
        try:
            response = self.http.get(url, timeout=WEBHOOK_TIMEOUT)
        except requests.RequestException as exc:
            return {"error": f"media unreachable: {type(exc).__name__}"}
        kind = response.headers.get("Content-Type", "").split(";")[0].strip()
        if response.status_code != 200:
            return {"error": f"media answered HTTP {response.status_code}"}
        if not kind.startswith("audio/"):
            return {"error": f"media is {kind or 'untyped'}, not audio (Twilio error 13420)"}
        seconds = _wav_seconds(response.content)
        return {"seconds": round(seconds, 2)} if seconds else {"error": "media is not a WAV file we can read"}

    def _verb_say(self, verb, url, turn, first):
        self._say(verb, url, turn)

    _verb_play = _verb_pause = _verb_say

    def _next_reply(self) -> Reply:
        reply = self.script.reply(self.replies_used)
        self.replies_used += 1
        return reply

    def _verb_gather(self, verb, url, turn, first):
        for child in verb:
            self._say(child, url, turn)
        reply = self._next_reply()
        turn.reply = reply.as_dict()
        if reply.kind == "hangup":
            raise _Hangup("completed")
        inputs = verb.get("input", "dtmf").split()
        action = urljoin(url, verb.get("action") or url)
        method = verb.get("method", "POST")
        if reply.kind == "keys" and "dtmf" in inputs:
            finish_on = verb.get("finishOnKey", "#")
            digits = reply.value.split(finish_on)[0] if finish_on else reply.value
            num_digits = verb.get("numDigits")
            if num_digits:
                digits = digits[: int(num_digits)]
            if num_digits and int(num_digits) >= MASKED_DIGITS:
                # A long entry is a date of birth or the like: the transcript, kept for a week,
                # says how many keys, not which.
                turn.reply = {"kind": "keys", "value": f"{len(digits)} keys (not shown)"}
            if digits:
                return action, method, {"Digits": digits}
        elif reply.kind == "say" and "speech" in inputs:
            return action, method, {"SpeechResult": reply.value, "Confidence": "0.9"}
        if verb.get("actionOnEmptyResult") == "true":
            return action, method, {}
        return None  # no input: Twilio goes on to the next verb

    def _verb_record(self, verb, url, turn, first):
        reply = self._next_reply()
        turn.reply = reply.as_dict()
        if reply.kind == "hangup":
            raise _Hangup("completed")
        action = urljoin(url, verb.get("action") or url)
        method = verb.get("method", "POST")
        finish_on = verb.get("finishOnKey", "1234567890*#")
        if reply.kind == "audio":
            audio = Path(reply.value).read_bytes()
            return action, method, self._recording(audio, {})
        if reply.kind == "keys" and reply.value[0] in finish_on:
            # The key ends an empty recording; Twilio passes it as Digits on the action.
            return action, method, self._recording(_silent_wav(), {"Digits": reply.value[0]})
        return None  # an empty recording: Twilio skips the action and goes on

    def _recording(self, audio: bytes, extra: dict[str, str]) -> dict[str, str]:
        sid = "RE" + secrets.token_hex(16)
        url = self.player.recordings.save_recording(self.call.sid, sid, audio)
        return {"RecordingSid": sid, "RecordingUrl": url,
                "RecordingDuration": str(round(_wav_seconds(audio))), **extra}

    def _side_document(self, url: str, method: str, extra: dict[str, str]) -> tuple[list[dict], set[str]]:
        """A document played to one side only (a whisper to staff, hold music): its prompts and
        the verbs it holds."""
        side = Turn(url=url)
        document = self._fetch(url, method, extra)
        for child in document:
            self._say(child, url, side)  # only Say, Play and Pause are heard
        return side.prompts, {child.tag for child in document}

    def _staff(self) -> str:
        """What the staff phone does at this transfer: the script's next behaviour (the last one
        for every transfer after)."""
        behaviours = [b.strip() for b in self.script.staff.split(",")]
        chosen = behaviours[min(self.transfers, len(behaviours) - 1)]
        self.transfers += 1
        return chosen

    def _verb_dial(self, verb, url, turn, first):
        numbers = [child for child in verb if child.tag == "Number"]
        queues = [child for child in verb if child.tag == "Queue"]
        if queues and not numbers:
            return self._dial_queue(verb, queues[0], url, turn)
        target = (numbers[0].text if numbers else queues[0].text if queues else verb.text) or ""
        turn.dial = {"to": target.strip()}
        staff = self._staff() if numbers or not queues else self.script.staff.split(",")[0].strip()
        if staff not in ("answers", "passes"):
            status = staff
        else:
            status = "completed"
            whisper_url = numbers[0].get("url") if numbers else None
            if whisper_url:
                extra = {"Direction": "outbound-dial", "ParentCallSid": self.call.sid,
                         "CallSid": "CA" + secrets.token_hex(16)}
                turn.dial["whisper"], verbs, gather = self._whisper(urljoin(url, whisper_url),
                                                                    numbers[0].get("method", "POST"), extra)
                if gather is not None:
                    # Staff choose by key: 1 takes the call, anything else passes.
                    key = "1" if staff == "answers" else "2"
                    turn.dial["staff_pressed"] = key
                    _prompts, verbs = self._side_document(urljoin(url, gather.get("action") or whisper_url),
                                                          gather.get("method", "POST"), {**extra, "Digits": key})
                if "Hangup" in verbs:
                    # Twilio: a whisper that hangs up declines the call; the caller's Dial ends
                    # as not answered and goes on to its action.
                    status = "no-answer"
            elif staff == "passes":
                status = "no-answer"
            if status == "completed":
                self.bridged_seconds += STAFF_TALK_SECONDS
        turn.dial["status"] = status
        if verb.get("action"):
            params = {"DialCallStatus": status, "DialCallSid": "CA" + secrets.token_hex(16),
                      "DialCallDuration": str(STAFF_TALK_SECONDS if status == "completed" else 0)}
            return urljoin(url, verb.get("action")), verb.get("method", "POST"), params
        if status == "completed":
            raise _Hangup("completed")  # the conversation happened; the caller hangs up after it
        return None

    def _dial_queue(self, verb, queue, url, turn):
        """<Dial><Queue>: take the first caller waiting in the queue and talk with them; an
        empty queue is waited on a little, then the Dial ends unanswered."""
        name = (queue.text or "").strip()
        # Twilio waits for a caller to join until the Dial's timeout (30 s by default); here at
        # most a few real seconds.
        deadline = time.monotonic() + min(QUEUE_DIAL_WAIT_SECONDS, float(verb.get("timeout", "30")))
        member = self.player.queues.take_from_queue(name, self.call.sid)
        while member is None and time.monotonic() < deadline:
            time.sleep(QUEUE_POLL_SECONDS / 2)
            member = self.player.queues.take_from_queue(name, self.call.sid)
        turn.dial = {"to": f"queue {name}", "status": "completed" if member else "no-answer"}
        if member:
            turn.dial["caller"] = member
            self.bridged_seconds += STAFF_TALK_SECONDS
        if verb.get("action"):
            params = {"DialCallStatus": turn.dial["status"], "QueueSid": queue_sid(name),
                      "DialCallDuration": str(STAFF_TALK_SECONDS if member else 0)}
            if member:
                params["DialCallSid"] = member
            return urljoin(url, verb.get("action")), verb.get("method", "POST"), params
        if member:
            raise _Hangup("completed")  # the conversation happened; staff hang up after it
        return None

    def _whisper(self, url: str, method: str, extra: dict[str, str]):
        """The whisper staff hear: its prompts (those inside a Gather too), its verbs, its Gather."""
        side = Turn(url=url)
        document = self._fetch(url, method, extra)
        gather = None
        for child in document:
            if child.tag == "Gather":
                gather = child
                for inner in child:
                    self._say(inner, url, side)
            else:
                self._say(child, url, side)
        return side.prompts, {child.tag for child in document}, gather

    def _verb_enqueue(self, verb, url, turn, first):
        """Wait in the queue until a staff call takes the caller (bridged), the wait document
        says <Leave> (leave) or the caller hangs up (hangup). Each pass of the wait document is
        asked with the caller's place and how long they waited (virtual seconds)."""
        name = (verb.text or "").strip()
        sid_of_queue = queue_sid(name)
        turn.queue = {"name": name, "waits": [], "passes": 0}
        queues = self.player.queues
        queues.join_queue(name, self.call.sid)
        wait_url = urljoin(url, verb.get("waitUrl")) if verb.get("waitUrl") else None
        wait_method = verb.get("waitUrlMethod", "POST")
        waited, result = 0, None
        try:
            while result is None:
                if queues.bridged_to(self.call.sid):
                    result = "bridged"
                    break
                if turn.queue["passes"] >= QUEUE_MAX_PASSES:
                    result = "system-error"
                    break
                turn.queue["passes"] += 1
                place = queues.queue_place(name, self.call.sid) or (1, 1)
                if wait_url:
                    params = {"QueuePosition": str(place[0]), "CurrentQueueSize": str(place[1]),
                              "QueueTime": str(waited), "AvgQueueTime": "0", "MaxQueueSize": "1000",
                              "QueueSid": sid_of_queue}
                    heard, ending, seconds, wait_url, wait_method = self._wait_pass(wait_url, wait_method, params)
                    if len(turn.queue["waits"]) < QUEUE_PASSES_SHOWN:
                        turn.queue["waits"].append(heard)
                    waited += seconds
                    if ending and not queues.bridged_to(self.call.sid):
                        result = ending
                        break
                else:
                    waited += 30
                if self.player.on_turn:
                    self.player.on_turn(self.transcript)
                time.sleep(QUEUE_POLL_SECONDS)
        finally:
            if result != "bridged":
                queues.leave_queue(name, self.call.sid)
        turn.queue.update(result=result, waited=waited)
        if result == "bridged":
            self.bridged_seconds += STAFF_TALK_SECONDS
        params = {"QueueResult": result, "QueueTime": str(waited), "QueueSid": sid_of_queue}
        action = urljoin(url, verb.get("action")) if verb.get("action") else None
        if result == "hangup":
            if action:
                self._request(action, verb.get("method", "POST"), {**self._params(), **params})  # answer ignored
            raise _Hangup("completed")
        if action:
            return action, verb.get("method", "POST"), params
        if result == "bridged":
            raise _Hangup("completed")  # the conversation happened; the caller hangs up after it
        return None  # left the queue: the verbs after <Enqueue>

    def _wait_pass(self, url: str, method: str, params: dict[str, str]):
        """One pass of a queue's wait document: (what the caller heard and did, how the wait
        ends or None, virtual seconds it took, the wait URL and method for the next pass)."""
        side = Turn(url=url)
        heard: dict[str, Any] = {"position": int(params["QueuePosition"]), "prompts": side.prompts}
        document = self._fetch(url, method, params)
        seconds = 0
        for verb in document:
            if verb.tag in ("Say", "Play", "Pause"):
                self._say(verb, url, side)
                seconds += int(verb.get("length", "1")) if verb.tag == "Pause" else SAY_SECONDS
            elif verb.tag == "Gather":
                for child in verb:
                    self._say(child, url, side)
                    seconds += SAY_SECONDS
                # What the caller does while waiting is the script's `queue`, not its replies
                # (how many passes a wait takes depends on when staff answer).
                reply = {"waits": Reply("silence"), "call_back": Reply("keys", "1"),
                         "hangup": Reply("hangup")}[self.script.queue]
                heard["reply"] = reply.as_dict()
                if reply.kind == "hangup":
                    return heard, "hangup", seconds, url, method
                if reply.kind == "keys":
                    answer = self._fetch(urljoin(url, verb.get("action") or url), verb.get("method", "POST"),
                                         {**params, "Digits": reply.value[:int(verb.get("numDigits", "1"))]})
                    for inner in answer:
                        if inner.tag in WAIT_ENDINGS:
                            return heard, WAIT_ENDINGS[inner.tag], seconds, url, method
                        self._say(inner, url, side)
                    break  # the Gather's answer replaced the rest of the document
                seconds += int(verb.get("timeout", "5"))
            elif verb.tag in WAIT_ENDINGS:
                return heard, WAIT_ENDINGS[verb.tag], seconds, url, method
            elif verb.tag == "Redirect":
                url, method = urljoin(url, (verb.text or "").strip()), verb.get("method", "POST")
                break
            else:
                self._application_error(None, f"<{verb.tag}> is not allowed in a queue's wait document")
        return heard, None, max(seconds, 1), url, method

    def _verb_redirect(self, verb, url, turn, first):
        return urljoin(url, (verb.text or "").strip()), verb.get("method", "POST"), {}

    def _verb_hangup(self, verb, url, turn, first):
        raise _Hangup("completed")

    def _verb_reject(self, verb, url, turn, first):
        if first and len(self.transcript.turns) == 1 and self.call.direction == "inbound":
            raise _Hangup("busy" if verb.get("reason") == "busy" else "no-answer")
        raise _Hangup("completed")

    def _verb_leave(self, verb, url, turn, first):
        raise _Hangup("completed")


def _wav_seconds(audio: bytes) -> float:
    """Length of a WAV file of any encoding (PCM, mu-law...); 0 when it cannot be read."""
    try:
        return soundfile.info(io.BytesIO(audio)).duration
    except (RuntimeError, soundfile.LibsndfileError):
        return 0.0


def _silent_wav(seconds: float = 0.1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()
