"""Pure call-flow engine: state + caller input -> actions + next state. No I/O, no web, no DB."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping

from call_flows import inbound, no_show, refill, reminder, text_no_show, text_refill, text_reminder
from call_flows.actions import (TASK_KINDS, Action, Answered, Ask, CallerInput, DialResult, Escalate,
                                Enqueue, EscalationEnded, FlowError,
                                Hangup, LeftQueue, QUEUE_RESULTS, Identify, Keys, OpenTask, OptOut, PlanCallBack, PlanRetry, Recorded,
                                RememberLanguage, Replied, Say, SetAppointmentStatus, Silence, Spoken, Step,
                                TakeMessage, Text, TextPatient, Transfer, in_language, split_language)

FLOWS: dict[str, ModuleType] = {"reminder": reminder, "inbound": inbound, "no_show": no_show, "refill": refill}
# Conversations by text: the same engine, fed replies instead of keys.
TEXT_FLOWS: dict[str, ModuleType] = {"text_reminder": text_reminder, "text_no_show": text_no_show,
                                      "text_refill": text_refill}

__all__ = ["FLOWS", "TEXT_FLOWS", "start", "step", "start_text", "reply", "text_accepts", "failure", "sensitive",
           "asks_personal_data", "takes_message", "Replied",
           "Text", "Action", "Answered", "Ask", "CallerInput", "DialResult", "Enqueue", "Escalate", "EscalationEnded",
           "FlowError", "Hangup", "Identify", "LeftQueue", "QUEUE_RESULTS",
           "Keys", "OpenTask", "OptOut", "PlanCallBack", "PlanRetry", "Recorded", "RememberLanguage", "Say", "SetAppointmentStatus",
           "TakeMessage", "TextPatient",
           "Silence", "TASK_KINDS", "Spoken", "Step", "Transfer", "in_language", "listening",
           "split_language"]


def _flow(name: str) -> ModuleType:
    try:
        return FLOWS[name]
    except KeyError:
        raise FlowError(f"unknown flow {name!r}") from None


def start(flow: str, answered: Answered, facts: Mapping[str, Any] | None = None) -> Step:
    """The first step of a call that has just been answered. `facts` are non-PHI settings a flow
    may branch on, such as can_transfer (the clinic has a staff number)."""
    return _flow(flow).start(answered, facts or {})


def step(flow: str, state: Mapping[str, Any], caller_input: CallerInput,
         facts: Mapping[str, Any] | None = None) -> Step:
    """The next step given the saved state and what the caller did."""
    return _flow(flow).advance(state, caller_input, facts or {})


def start_text(flow: str, facts: Mapping[str, Any] | None = None) -> Step:
    """The first text of a conversation."""
    return _text_flow(flow).start(facts or {})


def reply(flow: str, state: Mapping[str, Any], replied: Replied,
          facts: Mapping[str, Any] | None = None) -> Step:
    """The next step of a conversation given what the patient texted back."""
    return _text_flow(flow).advance(state, replied, facts or {})


def text_accepts(flow: str, state: Mapping[str, Any], intent: str | None) -> bool:
    """Whether a reply means something to the question a conversation is on (a number with two
    questions waiting, a reminder and a refill, has its "C" answer the one that asked for it)."""
    return _text_flow(flow).accepts(state, intent)


def _text_flow(name: str) -> ModuleType:
    try:
        return TEXT_FLOWS[name]
    except KeyError:
        raise FlowError(f"unknown text flow {name!r}") from None


def listening(flow: str, state: Mapping[str, Any]) -> tuple[str, ...]:
    """The intents a spoken answer to the current question may carry (the recogniser's grammar)."""
    listen = getattr(_flow(flow), "listening", None)
    return tuple(listen(state)) if listen else ()


def sensitive(flow: str, state: Mapping[str, Any]) -> bool:
    """Whether an answer to the current question is personal data the audit trail must not keep
    (a date of birth): the trail records that an answer came, not what it was."""
    return state.get("node") in getattr(_flow(flow), "SENSITIVE", ())


def takes_message(flow: str, state: Mapping[str, Any]) -> bool:
    """Whether the current question is a message for staff (a recording to keep, not to recognise)."""
    return state.get("node") in getattr(_flow(flow), "MESSAGE_NODES", ())


def asks_personal_data(flow: str) -> bool:
    """Whether any question of the flow is sensitive (see `sensitive`)."""
    return bool(getattr(_flow(flow), "SENSITIVE", ()))


def failure(can_transfer: bool, can_promise: bool = True) -> Step:
    """What a caller hears when a step fails: an apology, then staff; else a call-back promise
    backed by a task, or, when nothing can be recorded (the database is what failed), a plain
    request to call again: a promise nobody will see is not made."""
    effects: tuple = ()
    if can_transfer:
        actions: tuple[Action, ...] = (Say("common.apology_transfer"), Transfer())
    elif can_promise:
        actions, effects = (Say("common.apology_call_back"), Hangup()), (OpenTask("call_back"),)
    else:
        actions = (Say("common.apology_call_again"), Hangup())
    return Step(actions=actions, state={"node": "done", "misses": 0}, effects=effects,
                decision="step_failed", outcome="error")
