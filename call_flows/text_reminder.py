"""Appointment reminder by text: the details and "Reply C to confirm, R for a new time, X to
cancel" (each language's own letters; 1, 2 and 3 too), then the patient's answers.

A cancel is asked again before it happens. In private mode (a clinic's choice) the first text
names only the clinic, and the details follow when the patient replies 1. A reply that matches
nothing is passed to staff as a task (the text says so). As on a call, a change to the appointment
by someone else since the reminder went out stops the conversation from acting on it.
"""

from __future__ import annotations

from typing import Any, Mapping

from call_flows.actions import (CallerInput, FlowError, OpenTask, Replied, SetAppointmentStatus, Step,
                                Text)

# Digits mean what the question offered: 1 confirm, 2 new time, 3 cancel; in private mode 1 is
# "send me the details". The cancel check offers only X and C: a patient who learned "1 means
# confirm" must not cancel by sending 1 there.
DIGITS: dict[str, dict[str, str]] = {"asked": {"1": "confirm", "2": "reschedule", "3": "cancel"},
                                     "private": {"1": "details"},
                                     "confirm_cancel": {}}


# The words each question takes (beyond its digits).
WORDS: dict[str, frozenset[str]] = {"asked": frozenset({"confirm", "reschedule", "cancel"}),
                                    "private": frozenset({"details"}),
                                    "confirm_cancel": frozenset({"confirm", "cancel"})}


def accepts(state: Mapping[str, Any], intent: str | None) -> bool:
    """Whether a reply means something to the question this conversation is on."""
    node = state.get("node")
    return intent in DIGITS.get(node, {}) or intent in WORDS.get(node, frozenset())


def start(facts: Mapping[str, Any]) -> Step:
    """The reminder text: its details, or only the clinic's name in private mode."""
    private = bool(facts.get("private"))
    state: dict[str, Any] = {"node": "private" if private else "asked"}
    if facts.get("appointment") is not None:
        state["appointment"] = facts["appointment"]
    return Step(actions=(Text("sms.reminder_private" if private else "sms.reminder"),), state=state,
                decision="reminder_sent")


def advance(state: Mapping[str, Any], reply: CallerInput, facts: Mapping[str, Any]) -> Step:
    """Take the patient's reply to the question in state['node']."""
    if not isinstance(reply, Replied):
        raise FlowError(f"a text conversation takes replies, not {type(reply).__name__}")
    node = state.get("node")
    if node not in DIGITS:
        raise FlowError(f"text reminder has no node {node!r}")
    intent = DIGITS[node].get(reply.intent or "", reply.intent)
    if state.get("appointment") is not None and facts.get("appointment") != state["appointment"]:
        return _finish(state, "sms.changed_meanwhile", "appointment_changed", "appointment_changed_meanwhile")
    if node == "private" and intent == "details":
        return Step(actions=(Text("sms.reminder"),), state={**state, "node": "asked"}, decision="details_sent")
    if node == "confirm_cancel" and intent == "cancel":
        return _finish(state, "sms.cancelled", "cancelled", "cancel_confirmed", SetAppointmentStatus("cancelled"))
    if node == "confirm_cancel" and intent == "confirm":
        return Step(actions=(Text("sms.kept"),), state={**state, "node": "asked"}, decision="cancel_withdrawn")
    if node == "asked" and intent == "confirm":
        return _finish(state, "sms.confirmed", "confirmed", "confirm", SetAppointmentStatus("confirmed"))
    if node == "asked" and intent == "reschedule":
        return _finish(state, "sms.reschedule_noted", "reschedule_requested", "reschedule",
                       SetAppointmentStatus("reschedule_requested"),
                       OpenTask("reschedule_request", within_business_days=1))
    if node == "asked" and intent == "cancel":
        return Step(actions=(Text("sms.cancel_check"),), state={**state, "node": "confirm_cancel"},
                    decision="cancel_requested")
    # Anything else: a person reads it (the reply says so); the question stays open.
    return Step(actions=(Text("sms.passed_to_staff"),), state=dict(state), decision="not_understood",
                effects=(OpenTask("unmatched_text"),))


def _finish(state: Mapping[str, Any], prompt: str, outcome: str, decision: str, *effects) -> Step:
    return Step(actions=(Text(prompt),), state=replace_node(state, "done"), effects=effects,
                decision=decision, outcome=outcome)


def replace_node(state: Mapping[str, Any], node: str) -> dict[str, Any]:
    """The state with another node (what the conversation remembers is kept)."""
    return {**state, "node": node}
