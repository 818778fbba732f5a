"""No-show recovery by text: "we missed you at your recent appointment; reply 1 to ask for a new
one", then the patient's answer. The text names only the clinic (no date, no name: it may reach a
shared phone). A 1 opens a rebooking task for the office, and the reply says who will call and
when; anything else is passed to staff as a task, as for any text nobody's question matches.
"""

from __future__ import annotations

from typing import Any, Mapping

from call_flows.actions import CallerInput, FlowError, OpenTask, Replied, Step, Text

DIGITS: dict[str, dict[str, str]] = {"offered": {"1": "rebook"}, "done": {}}


def accepts(state: Mapping[str, Any], intent: str | None) -> bool:
    """Whether a reply means something to the question this conversation is on."""
    return (intent or "") in DIGITS.get(state.get("node"), {})


def start(facts: Mapping[str, Any]) -> Step:
    """The recovery text; the state remembers the visit as it was when the text went."""
    state: dict[str, Any] = {"node": "offered"}
    if facts.get("appointment") is not None:
        state["appointment"] = facts["appointment"]
    return Step(actions=(Text("sms.no_show"),), state=state, decision="no_show_text_sent")


def advance(state: Mapping[str, Any], reply: CallerInput, facts: Mapping[str, Any]) -> Step:
    """Take the patient's reply to the offer."""
    if not isinstance(reply, Replied):
        raise FlowError(f"a text conversation takes replies, not {type(reply).__name__}")
    node = state.get("node")
    if node not in DIGITS:
        raise FlowError(f"no-show text has no node {node!r}")
    if state.get("appointment") is not None and facts.get("appointment") != state["appointment"]:
        return Step(actions=(Text("sms.changed_meanwhile"),), state={**state, "node": "done"},
                    decision="appointment_changed_meanwhile", outcome="appointment_changed")
    if DIGITS[node].get(reply.intent or "") == "rebook":
        return Step(actions=(Text("sms.no_show_rebook_noted"),), state={**state, "node": "done"},
                    effects=(OpenTask("rebook_request", within_business_days=1),), decision="rebook",
                    outcome="rebook_requested")
    return Step(actions=(Text("sms.passed_to_staff"),), state=dict(state), decision="not_understood",
                effects=(OpenTask("unmatched_text"),))
