"""Refill prompt by text: "a prescription of yours is due for a refill; reply 1 to ask for it",
then the patient's answer. The text names the clinic only, never the medication: a text may reach
a shared or lost phone, and nobody proved who holds it. A 1 opens a refill task for the pharmacy
team and the reply says when they will look at it; anything else is passed to staff as a task,
as for any text nobody's question matches. A refill filled or stopped since the text went is not
requested again: the patient is asked to call.
"""

from __future__ import annotations

from typing import Any, Mapping

from call_flows.actions import CallerInput, FlowError, OpenTask, Replied, Step, Text

# What a reply means at each point: "1", or the word for a refill in the patient's language.
DIGITS: dict[str, dict[str, str]] = {"offered": {"1": "refill", "refill": "refill"}, "done": {}}


def accepts(state: Mapping[str, Any], intent: str | None) -> bool:
    """Whether a reply means something to the question this conversation is on."""
    return (intent or "") in DIGITS.get(state.get("node"), {})


def start(facts: Mapping[str, Any]) -> Step:
    """The refill text; the state remembers the prescription as it was when the text went."""
    state: dict[str, Any] = {"node": "offered"}
    if facts.get("prescription") is not None:
        state["prescription"] = facts["prescription"]
    return Step(actions=(Text("sms.refill"),), state=state, decision="refill_text_sent")


def advance(state: Mapping[str, Any], reply: CallerInput, facts: Mapping[str, Any]) -> Step:
    """Take the patient's reply to the offer."""
    if not isinstance(reply, Replied):
        raise FlowError(f"a text conversation takes replies, not {type(reply).__name__}")
    node = state.get("node")
    if node not in DIGITS:
        raise FlowError(f"refill text has no node {node!r}")
    if state.get("prescription") is not None and facts.get("prescription") != state["prescription"]:
        return Step(actions=(Text("sms.refill_changed"),), state={**state, "node": "done"},
                    decision="prescription_changed_meanwhile", outcome="prescription_changed")
    if DIGITS[node].get(reply.intent or "") == "refill":
        return Step(actions=(Text("sms.refill_noted"),), state={**state, "node": "done"},
                    effects=(OpenTask("refill_request", within_business_days=1),), decision="refill",
                    outcome="refill_requested")
    return Step(actions=(Text("sms.passed_to_staff"),), state=dict(state), decision="not_understood",
                effects=(OpenTask("unmatched_text"),))
