"""The reminder by text, as a pure flow: replies in, texts and effects out."""

import pytest

import call_flows
from call_flows import OpenTask, Replied, SetAppointmentStatus, Text

AS_SENT = {"appointment": "as-sent"}


def reply(state, intent, facts=AS_SENT):
    return call_flows.reply("text_reminder", state, Replied(intent), facts)


def test_the_reminder_text_has_the_details_or_in_private_mode_only_the_clinic():
    full = call_flows.start_text("text_reminder", AS_SENT)
    private = call_flows.start_text("text_reminder", {**AS_SENT, "private": True})
    assert (full.actions, full.state["node"]) == ((Text("sms.reminder"),), "asked")
    assert (private.actions, private.state["node"]) == ((Text("sms.reminder_private"),), "private")
    details = reply(private.state, "1")
    assert (details.actions, details.state["node"]) == ((Text("sms.reminder"),), "asked")


@pytest.mark.parametrize("intent,text,outcome,effects", [
    ("confirm", "sms.confirmed", "confirmed", (SetAppointmentStatus("confirmed"),)),
    ("1", "sms.confirmed", "confirmed", (SetAppointmentStatus("confirmed"),)),
    ("reschedule", "sms.reschedule_noted", "reschedule_requested",
     (SetAppointmentStatus("reschedule_requested"), OpenTask("reschedule_request", within_business_days=1))),
    ("2", "sms.reschedule_noted", "reschedule_requested",
     (SetAppointmentStatus("reschedule_requested"), OpenTask("reschedule_request", within_business_days=1))),
])
def test_each_answer_to_the_reminder(intent, text, outcome, effects):
    step = reply(call_flows.start_text("text_reminder", AS_SENT).state, intent)
    assert (step.actions, step.outcome, step.effects, step.state["node"]) == ((Text(text),), outcome, effects, "done")


def test_a_cancel_is_asked_again_and_can_be_withdrawn():
    asked = call_flows.start_text("text_reminder", AS_SENT).state
    check = reply(asked, "cancel")
    assert (check.actions, check.effects, check.state["node"]) == ((Text("sms.cancel_check"),), (), "confirm_cancel")
    done = reply(check.state, "cancel")
    assert (done.effects, done.outcome) == ((SetAppointmentStatus("cancelled"),), "cancelled")
    kept = reply(check.state, "confirm")
    assert (kept.actions, kept.effects, kept.state["node"]) == ((Text("sms.kept"),), (), "asked")


def test_a_reply_that_matches_nothing_goes_to_staff_and_the_question_stays_open():
    asked = call_flows.start_text("text_reminder", AS_SENT).state
    step = reply(asked, None)
    assert (step.actions, step.effects, step.state["node"], step.done) == (
        (Text("sms.passed_to_staff"),), (OpenTask("unmatched_text"),), "asked", False)


def test_an_appointment_changed_since_the_reminder_is_not_acted_on():
    asked = call_flows.start_text("text_reminder", AS_SENT).state
    step = reply(asked, "confirm", {"appointment": "moved-since"})
    assert (step.actions, step.effects, step.outcome) == ((Text("sms.changed_meanwhile"),), (), "appointment_changed")


def test_a_text_flow_takes_replies_only():
    with pytest.raises(call_flows.FlowError):
        call_flows.reply("text_reminder", {"node": "asked"}, call_flows.Keys("1"))
