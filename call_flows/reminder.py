"""Appointment reminder: greet, check the right person answered, give details, take the answer.

Nothing about the appointment is spoken until the callee says they are the patient.
Keys: 1 confirm, 2 cancel (asked again before it happens), 3 new time, 9 repeat.
No input or a wrong key re-asks the same question at most twice, then the call closes politely.
"""

from __future__ import annotations

from typing import Any, Mapping

from call_flows.actions import (Answered, Ask, CallerInput, FlowError, Hangup, Keys, Say,
                                SetAppointmentStatus, Silence, Step)

MAX_REPROMPTS = 2

# The question each node asks when it is (re)entered.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "identify": ("reminder.identify",),
    "menu": ("reminder.menu",),
    "confirm_cancel": ("reminder.cancel_check",),
}


def start(answered: Answered, facts: Mapping[str, Any] | None = None) -> Step:
    """First words of the call: a voicemail without PHI, or the greeting and identity question."""
    if answered.is_machine:
        return _finish("voicemail", Say("reminder.voicemail"), decision="left_voicemail")
    return Step(actions=(Ask(("reminder.greeting", *QUESTIONS["identify"])),),
                state={"node": "identify", "misses": 0})


def advance(state: Mapping[str, Any], caller_input: CallerInput,
            facts: Mapping[str, Any] | None = None) -> Step:
    """Take the caller's answer to the question asked in state['node']."""
    node = state.get("node")
    if node == "done":
        return Step(actions=(Hangup(),), state=state, decision="input_after_end")
    handler = _HANDLERS.get(node)
    if handler is None:
        raise FlowError(f"reminder flow has no node {node!r}")
    key = caller_input.digits[:1] if isinstance(caller_input, Keys) else None
    step = handler(key) if key else None
    return step if step is not None else _miss(state, caller_input)


def _identify(key: str) -> Step | None:
    if key == "1":
        return _ask("menu", ("reminder.details", *QUESTIONS["menu"]), decision="identity_confirmed")
    if key == "2":
        return _finish("wrong_person", Say("reminder.wrong_person"), decision="not_the_patient")
    return None


def _menu(key: str) -> Step | None:
    if key == "1":
        return _finish("confirmed", Say("reminder.confirmed"), decision="confirm",
                       effects=(SetAppointmentStatus("confirmed"),))
    if key == "2":
        return _ask("confirm_cancel", QUESTIONS["confirm_cancel"], decision="cancel_requested")
    if key == "3":
        return _finish("reschedule_requested", Say("reminder.reschedule_noted"), decision="reschedule",
                       effects=(SetAppointmentStatus("reschedule_requested"),))
    if key == "9":
        return _ask("menu", ("reminder.details", *QUESTIONS["menu"]), decision="repeat")
    return None


def _confirm_cancel(key: str) -> Step | None:
    if key == "1":
        return _finish("cancelled", Say("reminder.cancelled"), decision="cancel_confirmed",
                       effects=(SetAppointmentStatus("cancelled"),))
    if key == "2":
        return _ask("menu", ("reminder.kept", *QUESTIONS["menu"]), decision="cancel_withdrawn")
    return None


_HANDLERS = {"identify": _identify, "menu": _menu, "confirm_cancel": _confirm_cancel}


def _ask(node: str, prompts: tuple[str, ...], decision: str) -> Step:
    """Move to node and ask its question; a valid answer resets the miss count."""
    return Step(actions=(Ask(prompts),), state={"node": node, "misses": 0}, decision=decision)


def _finish(outcome: str, *actions, decision: str, effects=()) -> Step:
    return Step(actions=(*actions, Hangup()), state={"node": "done", "misses": 0},
                effects=effects, decision=decision, outcome=outcome)


def _miss(state: Mapping[str, Any], caller_input: CallerInput) -> Step:
    """Re-ask after silence or a wrong key, or close politely once the re-prompts are used up."""
    misses = int(state.get("misses", 0)) + 1
    decision = "no_input" if isinstance(caller_input, Silence) else "invalid_key"
    if misses > MAX_REPROMPTS:
        return _finish("no_response", Say("reminder.no_response"), decision=decision)
    node = state["node"]
    sorry = "common.no_input" if isinstance(caller_input, Silence) else "common.invalid_key"
    return Step(actions=(Ask((sorry, *QUESTIONS[node])),), state={"node": node, "misses": misses},
                decision=decision)
