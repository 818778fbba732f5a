"""The inbound line's first version: welcome, transfer with a whisper, honest when nobody answers."""

import pytest

import call_flows
from call_flows import Answered, DialResult, Hangup, Keys, Say, Transfer


def test_welcome_then_transfer_with_a_whisper():
    step = call_flows.start("inbound", Answered(), {"can_transfer": True})
    assert step.actions == (Say("inbound.welcome"), Say("inbound.connecting"),
                            Transfer(whisper="inbound.whisper"))
    assert step.state == {"node": "transferring"} and not step.done


def test_without_a_staff_number_the_caller_is_told_when_to_call():
    step = call_flows.start("inbound", Answered(), {})
    assert step.actions == (Say("inbound.welcome"), Say("inbound.no_staff"), Hangup())
    assert step.outcome == "not_transferred"


@pytest.mark.parametrize("status,actions,outcome,decision", [
    ("completed", (Hangup(),), "transferred", "staff_answered"),
    ("no-answer", (Say("inbound.nobody_available"), Hangup()), "transfer_unanswered", "staff_no_answer"),
    ("busy", (Say("inbound.nobody_available"), Hangup()), "transfer_unanswered", "staff_busy"),
    ("failed", (Say("inbound.nobody_available"), Hangup()), "transfer_unanswered", "staff_failed"),
])
def test_the_transfer_result(status, actions, outcome, decision):
    step = call_flows.step("inbound", {"node": "transferring"}, DialResult(status), {"can_transfer": True})
    assert (step.actions, step.outcome, step.decision) == (actions, outcome, decision)


def test_anything_after_the_end_hangs_up():
    step = call_flows.step("inbound", {"node": "done"}, Keys("1"))
    assert step.actions == (Hangup(),) and step.outcome is None


def test_answered_counts_as_staff_answering():
    step = call_flows.step("inbound", {"node": "transferring"}, DialResult("answered"), {"can_transfer": True})
    assert step.outcome == "transferred"
