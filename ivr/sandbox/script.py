"""Scripted callers: how the phone on the other end behaves, as plain data (YAML or JSON).

    answer: human            # or machine_end_beep, machine_start, fax, unknown, busy, no-answer, failed
    replies:                 # one per question (Gather or Record), in order
      - 1                    # press 1
      - silence              # say nothing
      - {keys: "9"}          # press 9
      - {audio: yes.wav}     # speak a recording into a Record
      - {say: "yes"}         # a speech result for a Gather that listens for speech
      - hangup               # hang up at this question
    then: silence            # when replies run out: silence (default) or hangup
    staff: answers           # a transfer to staff: answers, passes (presses 2 at the whisper),
                             # no-answer or busy; "passes,answers" for each transfer in turn
    queue: waits             # in a queue (Enqueue): waits, call_back (presses 1 at the first
                             # offer to be called back) or hangup (hangs up at the first one)
    callbacks: {duplicate: true, reorder: true}   # misbehave like a real carrier can
    callbacks: {lose: [completed]}                # these events' callbacks never arrive
    dial_delay: 5            # seconds the carrier takes to answer the dial that places a call to
                             # this phone (the call rings meanwhile), up to 30: a slow carrier
    texts:                   # texts sent to this phone
      status: delivered      # or undelivered, failed, or landline (the carrier refuses them)
      replies: [C]           # what the phone texts back, one per text it gets, in order
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ivr.errors import IvrError

ANSWERS = ("human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
           "fax", "unknown", "busy", "no-answer", "failed")
UNANSWERED = ("busy", "no-answer", "failed")
STAFF = ("answers", "passes", "no-answer", "busy")
QUEUE = ("waits", "call_back", "hangup")
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
TEXT_STATUSES = ("delivered", "undelivered", "failed", "landline")


class ScriptError(IvrError):
    """A caller script that cannot be followed; the message names the field."""


@dataclass(frozen=True)
class Reply:
    """What the caller does at one question."""

    kind: str            # keys, silence, hangup, audio, say
    value: str | None = None

    def describe(self) -> str:
        """Human words for the transcript."""
        return {"keys": f"presses {self.value}", "silence": "says nothing", "hangup": "hangs up",
                "audio": f"speaks {Path(self.value or '').name}", "say": f"says {self.value!r}"}[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class Script:
    """A whole caller: whether and how the phone answers, and each reply."""

    answer: str = "human"
    replies: tuple[Reply, ...] = ()
    then: str = "silence"
    staff: str = "answers"
    duplicate_callbacks: bool = False
    reorder_callbacks: bool = False
    max_turns: int = 40
    lost_callbacks: tuple[str, ...] = ()  # events whose status callbacks are never delivered
    text_status: str = "delivered"         # how texts to this phone fare
    text_replies: tuple[str, ...] = ()     # what it texts back, one per text it gets
    queue: str = "waits"                   # what the caller does while waiting in a queue
    dial_delay: float = 0                  # seconds before the carrier answers a dial to this phone

    def reply(self, index: int) -> Reply:
        """The reply to the index-th question (0-based), or what the caller does after the script."""
        return self.replies[index] if index < len(self.replies) else Reply(self.then)

    def as_dict(self) -> dict[str, Any]:
        """The script as data that parse() reads back."""
        return {"answer": self.answer, "replies": [_reply_data(r) for r in self.replies],
                "then": self.then, "staff": self.staff,
                "callbacks": {"duplicate": self.duplicate_callbacks, "reorder": self.reorder_callbacks,
                              "lose": list(self.lost_callbacks)},
                "texts": {"status": self.text_status, "replies": list(self.text_replies)},
                "max_turns": self.max_turns, "queue": self.queue, "dial_delay": self.dial_delay}


def _reply_data(reply: Reply) -> Any:
    return reply.kind if reply.value is None else {reply.kind: reply.value}


def parse(data: Mapping[str, Any] | None, base: Path | None = None, allow_files: bool = True) -> Script:
    """A Script from parsed YAML/JSON; relative audio paths are taken from `base`. Scripts that
    arrive over HTTP must not name files on the server (allow_files=False)."""
    if data is not None and not isinstance(data, Mapping):
        raise ScriptError("a script is a mapping of fields (answer, replies, ...)")
    data = dict(data or {})
    unknown = set(data) - {"answer", "replies", "then", "staff", "callbacks", "texts", "max_turns", "queue",
                           "dial_delay"}
    if unknown:
        raise ScriptError(f"unknown script field(s): {', '.join(sorted(unknown))}")
    answer = str(data.get("answer", "human"))
    if answer not in ANSWERS:
        raise ScriptError(f"answer must be one of {', '.join(ANSWERS)}, not {answer!r}")
    then = str(data.get("then", "silence"))
    if then not in ("silence", "hangup"):
        raise ScriptError(f"then must be silence or hangup, not {then!r}")
    staff = str(data.get("staff", "answers"))
    for each in staff.split(","):
        if each.strip() not in STAFF:
            raise ScriptError(f"staff must be one of {', '.join(STAFF)} (or several, comma-separated, one per "
                              f"transfer), not {each.strip()!r}")
    queue = str(data.get("queue", "waits"))
    if queue not in QUEUE:
        raise ScriptError(f"queue must be one of {', '.join(QUEUE)}, not {queue!r}")
    raw_replies = data.get("replies") or []
    if not isinstance(raw_replies, list):
        raise ScriptError("replies must be a list")
    replies = tuple(_parse_reply(item, n, base, allow_files) for n, item in enumerate(raw_replies, 1))
    callbacks = data.get("callbacks") or {}
    if not isinstance(callbacks, dict) or set(callbacks) - {"duplicate", "reorder", "lose"}:
        raise ScriptError("callbacks takes duplicate and reorder (true or false) and lose (a list of events)")
    lost = callbacks.get("lose") or []
    if not isinstance(lost, list) or set(lost) - set(CALLBACK_EVENTS):
        raise ScriptError(f"callbacks.lose is a list of events from {', '.join(CALLBACK_EVENTS)}")
    max_turns = data.get("max_turns", 40)
    if not isinstance(max_turns, int) or not 1 <= max_turns <= 500:
        raise ScriptError("max_turns must be a whole number from 1 to 500")
    texts = data.get("texts") or {}
    if not isinstance(texts, dict) or set(texts) - {"status", "replies"}:
        raise ScriptError("texts takes status and replies")
    text_status = str(texts.get("status", "delivered"))
    if text_status not in TEXT_STATUSES:
        raise ScriptError(f"texts.status must be one of {', '.join(TEXT_STATUSES)}, not {text_status!r}")
    text_replies = texts.get("replies") or []
    if not isinstance(text_replies, list) or not all(isinstance(r, (str, int)) for r in text_replies):
        raise ScriptError("texts.replies is a list of texts")
    dial_delay = data.get("dial_delay", 0)
    if isinstance(dial_delay, bool) or not isinstance(dial_delay, (int, float)) or not 0 <= dial_delay <= 30:
        raise ScriptError("dial_delay must be a number of seconds from 0 to 30")
    return Script(answer, replies, then, staff, bool(callbacks.get("duplicate")),
                  bool(callbacks.get("reorder")), max_turns, tuple(lost), text_status,
                  tuple(str(r) for r in text_replies), queue, float(dial_delay))


def _parse_reply(item: Any, n: int, base: Path | None, allow_files: bool) -> Reply:
    where = f"reply {n}"
    if isinstance(item, bool):
        raise ScriptError(f"{where}: {item!r} is not a reply")
    if isinstance(item, int):
        item = str(item)
    if isinstance(item, str):
        if item in ("silence", "hangup"):
            return Reply(item)
        item = {"keys": item}
    if not isinstance(item, dict) or len(item) != 1:
        raise ScriptError(f"{where}: expected keys, silence, hangup, {{audio: FILE}} or {{say: TEXT}}")
    (kind, value), = item.items()
    value = str(value)
    if kind == "keys":
        if not value or any(c not in "0123456789*#" for c in value):
            raise ScriptError(f"{where}: keys may hold only 0-9, * and #, not {value!r}")
    elif kind == "audio":
        if not allow_files:
            raise ScriptError(f"{where}: audio replies can only be set from the command line "
                              f"(ivr sandbox phone --script FILE)")
        path = Path(value) if base is None or Path(value).is_absolute() else base / value
        if not path.is_file():
            raise ScriptError(f"{where}: audio file {value!r} not found")
        value = str(path.resolve())
    elif kind != "say":
        raise ScriptError(f"{where}: unknown reply {kind!r}")
    return Reply(kind, value)


def load(path: str | Path) -> Script:
    """Read a script file (YAML or JSON)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"cannot read script {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"script {path} is not valid YAML or JSON: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ScriptError(f"script {path} must be a mapping of fields")
    return parse(data, base=path.parent)


def from_keys(keys: str, **fields: Any) -> Script:
    """A script from a comma-separated list such as '1,9,silence,1' or '@yes.wav,1' (@ speaks
    the recording in that file)."""
    parts = [part.strip() for part in keys.split(",") if part.strip()] if keys else []
    replies = [{"audio": part[1:]} if part.startswith("@") else part for part in parts]
    return parse({"replies": replies, **fields}, base=Path.cwd())

