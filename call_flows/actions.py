"""Values the engine speaks in: caller inputs in, actions and effects out. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union


class FlowError(Exception):
    """Root of the errors raised by the flow engine (unknown flow, corrupt state)."""


# Caller inputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answered:
    """The call was answered; answered_by is Twilio's AnsweredBy when detection ran."""

    answered_by: str | None = None

    @property
    def is_machine(self) -> bool:
        """True when an answering machine or fax picked up."""
        return bool(self.answered_by) and (self.answered_by.startswith("machine")
                                           or self.answered_by == "fax")


@dataclass(frozen=True)
class Keys:
    """The caller pressed keys (Twilio's Digits)."""

    digits: str


@dataclass(frozen=True)
class Silence:
    """The question timed out with no input."""


@dataclass(frozen=True)
class DialResult:
    """A transfer ended: Twilio's DialCallStatus (completed, busy, no-answer, failed, canceled)."""

    status: str


@dataclass(frozen=True)
class Spoken:
    """The caller answered by voice: the intent heard (None when nothing usable was heard), or
    for a question that asked for a value (a date), intent names its kind and value holds it
    ('1952-03-04')."""

    intent: str | None
    confidence: float = 0.0
    value: str | None = None


@dataclass(frozen=True)
class Replied:
    """The patient answered a text: what their words mean (confirm, reschedule, cancel, or a
    digit 1-3 whose meaning depends on the question), or None when they match nothing."""

    intent: str | None


@dataclass(frozen=True)
class Recorded:
    """The caller left a message (TakeMessage): the id it is kept under, and its length."""

    message: str
    seconds: int = 0


@dataclass(frozen=True)
class LeftQueue:
    """The caller left the queue (Enqueue): answered (staff took them), call_back (they pressed 1
    to be called back), unanswered (no staff line took them in time), or hangup (they gave up)."""

    result: str


QUEUE_RESULTS = ("answered", "call_back", "unanswered", "hangup")

CallerInput = Union[Keys, Silence, DialResult, Spoken, Replied, Recorded, LeftQueue]


def missed(caller_input: CallerInput) -> tuple[str, str]:
    """(decision, apology prompt) for an answer a question could not take: silence, words not
    understood, or a key that is not one of the choices."""
    if isinstance(caller_input, Silence):
        return "no_input", "common.no_input"
    if isinstance(caller_input, Spoken):
        return "not_understood", "common.not_understood"
    return "invalid_key", "common.invalid_key"


# Actions (what the caller hears and what the call does) ----------------------------------------

def in_language(prompt: str, language: str) -> str:
    """A prompt key said in another language than the call's: 'es:inbound.language_offer'."""
    return f"{language}:{prompt}"


def split_language(prompt: str) -> tuple[str | None, str]:
    """(language or None, key) of a prompt reference made by in_language or a plain key."""
    language, sep, key = prompt.partition(":")
    return (language, key) if sep else (None, prompt)


@dataclass(frozen=True)
class Say:
    """Speak a prompt from the catalogue by key."""

    prompt: str


@dataclass(frozen=True)
class Ask:
    """Speak prompts, then take the answer: keys, or also speech when `listen` names the intents
    a spoken answer may carry (an empty listen means keys only)."""

    prompts: tuple[str, ...]
    num_digits: int = 1
    timeout: int = 6
    listen: tuple[str, ...] = ()
    max_seconds: int | None = None  # the longest spoken answer; None: a short one


@dataclass(frozen=True)
class TakeMessage:
    """Record a message for staff after a tone (voicemail), up to max_seconds; # ends it."""

    max_seconds: int = 120


@dataclass(frozen=True)
class Transfer:
    """Connect the caller to the clinic's staff number (never a number the caller gave); staff
    hear the whisper prompt before the caller is put through."""

    whisper: str | None = None
    line: int = 0   # which of the clinic's staff lines, in order (0: its staff phone)
    pharmacy: bool = False  # the pharmacy of the prescription the call is about (else the staff phone)


@dataclass(frozen=True)
class Enqueue:
    """Put the caller in a queue of their own: while they wait they hear their place in the
    clinic's line and the expected wait, and may press 1 to be called back instead; staff lines
    are rung in turn, and staff hear why the caller is coming before they take them."""


@dataclass(frozen=True)
class Hangup:
    """End the call."""


@dataclass(frozen=True)
class Text:
    """Send the patient a text from the catalogue by key (a conversation's action)."""

    prompt: str


Action = Union[Say, Ask, TakeMessage, Transfer, Enqueue, Hangup, Text]


# Effects (what the record should remember) -----------------------------------------------------

@dataclass(frozen=True)
class SetAppointmentStatus:
    """Change the appointment this call is about."""

    status: str


@dataclass(frozen=True)
class OptOut:
    """The callee asked us to stop calling this patient's number (honoured everywhere at once)."""

    source: str


@dataclass(frozen=True)
class OpenTask:
    """A person at the clinic now owes the patient what a prompt just promised (a call back, a
    new time, a refill): `within_business_days` 0 means as soon as someone can."""

    kind: str
    within_business_days: int = 0
    prescription_id: int | None = None
    voicemail: str | None = None   # the message the task is about (Recorded.message)


@dataclass(frozen=True)
class TextPatient:
    """Confirm by text what the patient just asked for on the call (to their number, when it
    can take texts and has not opted out)."""

    prompt: str


@dataclass(frozen=True)
class Identify:
    """The caller proved to be this patient (their date of birth matched): from now on the call
    is about them and their next appointment."""

    patient_id: int


@dataclass(frozen=True)
class RememberLanguage:
    """The caller chose a language: use it for this call and for the next call from their number."""

    language: str


@dataclass(frozen=True)
class PlanRetry:
    """Ring again another day, in the patient's calling hours, instead of asking a person to."""

    after_days: int = 1


@dataclass(frozen=True)
class Escalate:
    """The caller is being handed to a person, for this reason (the start of an escalation)."""

    reason: str


@dataclass(frozen=True)
class PlanCallBack:
    """Virtual hold: ring a staff line as soon as possible and, when someone takes it, connect
    them to the caller (once; if nobody does, a call_back task)."""


@dataclass(frozen=True)
class EscalationEnded:
    """How the hand-over ended: answered (on staff line `line`), call_back, voicemail, unanswered."""

    outcome: str
    line: int | None = None


# What a task is for. Every prompt that promises a person will act names one of these.
TASK_KINDS = ("call_back", "reschedule_request", "wrong_person", "refill_request", "unmatched_text",
              "voicemail_review", "rebook_request", "no_show_follow_up")

Effect = Union[SetAppointmentStatus, OptOut, OpenTask, PlanRetry, Identify, RememberLanguage, Escalate,
               EscalationEnded, PlanCallBack, TextPatient]


@dataclass(frozen=True)
class Step:
    """The engine's answer: what to play, what to change, and the state to keep for next time."""

    actions: tuple[Action, ...]
    state: Mapping[str, Any]
    effects: tuple[Effect, ...] = ()
    decision: str | None = None
    outcome: str | None = None

    @property
    def done(self) -> bool:
        """True when the flow has finished (an outcome is set)."""
        return self.outcome is not None

    def prompts(self) -> list[str]:
        """Every prompt key this step speaks, in order (for the audit trail)."""
        keys: list[str] = []
        for action in self.actions:
            if isinstance(action, (Say, Text)):
                keys.append(action.prompt)
            elif isinstance(action, Ask):
                keys.extend(action.prompts)
        return keys
