"""Inbound line, first version: welcome the caller, then a live transfer to the clinic's staff.

The caller is not identified, so nothing about any patient is said, to the caller or to staff
(the whisper says only that an unidentified caller is on the line). Language choice, caller
identification and the menu for seniors come later and will replace the straight transfer.
"""

from __future__ import annotations

from typing import Any, Mapping

from call_flows.actions import Answered, CallerInput, DialResult, Hangup, Say, Step, Transfer


def start(answered: Answered, facts: Mapping[str, Any]) -> Step:
    """Welcome, then staff; without a staff number, say when to call instead."""
    if not facts.get("can_transfer"):
        return Step(actions=(Say("inbound.welcome"), Say("inbound.no_staff"), Hangup()),
                    state={"node": "done"}, decision="no_staff_number", outcome="not_transferred")
    return Step(actions=(Say("inbound.welcome"), Say("inbound.connecting"),
                         Transfer(whisper="inbound.whisper")),
                state={"node": "transferring"}, decision="transfer")


def advance(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """After the transfer: done when staff answered, an honest apology when nobody did."""
    if state.get("node") == "transferring" and isinstance(caller_input, DialResult):
        if caller_input.status in ("completed", "answered"):
            return Step(actions=(Hangup(),), state={"node": "done"}, decision="staff_answered",
                        outcome="transferred")
        return Step(actions=(Say("inbound.nobody_available"), Hangup()), state={"node": "done"},
                    decision=f"staff_{caller_input.status.replace('-', '_')}",
                    outcome="transfer_unanswered")
    return Step(actions=(Hangup(),), state=dict(state), decision="input_after_end")
