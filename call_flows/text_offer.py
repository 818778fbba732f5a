"""An offer by text, answered with one reply: the text, then "1" (or the offer's own word) takes
it up and opens a task for the office; anything else is passed to staff as a task, as for any
text nobody's question matches. The conversation remembers its subject (a visit, a
prescription) as it was when the text went, and a reply after someone else changed it is not
acted on: the patient is asked to call. The no-show recovery and the refill prompt are offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from call_flows.actions import CallerInput, FlowError, OpenTask, Replied, Step, Text


@dataclass(frozen=True)
class Offer:
    """What one offer says and does; the rest is the same for every offer."""

    name: str             # the flow's name, for errors
    subject: str          # the fact its state remembers: appointment or prescription
    text: str             # the first text
    taken: str            # the reply when the offer is taken
    changed: str          # the reply when the subject changed since
    task: str             # the task a taken offer opens
    words: frozenset[str]  # replies that take it: "1" and the offer's own word
    sent: str             # decisions and outcomes, as the audit trail names them
    take: str
    taken_outcome: str
    changed_outcome: str

    def accepts(self, state: Mapping[str, Any], intent: str | None) -> bool:
        """Whether a reply means something to the question this conversation is on."""
        return state.get("node") == "offered" and intent in self.words

    def start(self, facts: Mapping[str, Any]) -> Step:
        """The offer's text; the state remembers the subject as it was when the text went."""
        state: dict[str, Any] = {"node": "offered"}
        if facts.get(self.subject) is not None:
            state[self.subject] = facts[self.subject]
        return Step(actions=(Text(self.text),), state=state, decision=self.sent)

    def advance(self, state: Mapping[str, Any], reply: CallerInput, facts: Mapping[str, Any]) -> Step:
        """Take the patient's reply to the offer."""
        if not isinstance(reply, Replied):
            raise FlowError(f"a text conversation takes replies, not {type(reply).__name__}")
        if state.get("node") not in ("offered", "done"):
            raise FlowError(f"{self.name} text has no node {state.get('node')!r}")
        if state.get(self.subject) is not None and facts.get(self.subject) != state[self.subject]:
            return Step(actions=(Text(self.changed),), state={**state, "node": "done"},
                        decision=f"{self.subject}_changed_meanwhile", outcome=self.changed_outcome)
        if self.accepts(state, reply.intent):
            return Step(actions=(Text(self.taken),), state={**state, "node": "done"},
                        effects=(OpenTask(self.task, within_business_days=1),), decision=self.take,
                        outcome=self.taken_outcome)
        return Step(actions=(Text("sms.passed_to_staff"),), state=dict(state), decision="not_understood",
                    effects=(OpenTask("unmatched_text"),))
