"""The no-show recovery flows, by call and by text: a missed visit is named only to the patient,
and a new appointment asked for is a task for the office."""

import pytest

import call_flows
from call_flows import Answered, Ask, Hangup, Keys, OpenTask, Replied, Say, Silence, Spoken, Text

REBOOK = OpenTask("rebook_request", within_business_days=1)


def walk(keys, facts=None):
    step = call_flows.start("no_show", Answered("human"), facts or {})
    for key in keys:
        step = call_flows.step("no_show", step.state, key if not isinstance(key, str) else Keys(key), facts or {})
    return step


def test_the_call_greets_and_asks_who_answered_before_saying_anything_of_the_visit():
    step = walk([])
    assert step.actions == (Ask(("reminder.greeting", "reminder.identify")),)
    assert step.state == {"node": "identify", "misses": 0, "purpose": "no_show"}


def test_a_machine_gets_the_voicemail_without_details():
    step = call_flows.start("no_show", Answered("machine_end_beep"), {})
    assert (step.actions, step.outcome, step.effects) == ((Say("reminder.voicemail"), Hangup()), "voicemail", ())


@pytest.mark.parametrize("keys,actions,outcome,effects", [
    (["1"], (Ask(("no_show.missed", "no_show.offer")),), None, ()),
    (["1", "1"], (Say("no_show.rebook_noted"), Hangup()), "rebook_requested", (REBOOK,)),
    (["1", "2"], (Say("no_show.declined"), Hangup()), "rebook_declined", ()),
    (["1", "9"], (Ask(("no_show.missed", "no_show.offer")),), None, ()),
    (["1", "3"], (Ask(("common.invalid_key", "no_show.offer")),), None, ()),
    (["2"], (Say("reminder.wrong_person"), Hangup()), "wrong_person", (OpenTask("wrong_person"),)),
])
def test_each_answer(keys, actions, outcome, effects):
    step = walk(keys)
    assert (step.actions, step.outcome, step.effects) == (actions, outcome, effects)
    assert step.state["purpose"] == "no_show"


def test_by_voice_yes_asks_for_a_new_appointment_and_the_offer_listens_for_its_own_words():
    facts = {"voice_answers": True}
    offered = walk([Spoken("yes")], facts)
    assert offered.actions == (Ask(("no_show.missed", "no_show.offer_voice"), listen=("yes", "no", "repeat", "stop",
                                                                                        "1", "2", "9")),)
    assert call_flows.listening("no_show", offered.state) == ("yes", "no", "repeat", "stop", "1", "2", "9")
    done = walk([Spoken("yes"), Spoken("yes")], facts)
    assert (done.outcome, done.effects) == ("rebook_requested", (REBOOK,))


def test_silence_repeats_the_offer_then_closes():
    step = walk(["1", Silence(), Silence(), Silence()])
    assert (step.outcome, step.actions) == ("no_response", (Say("reminder.no_response"), Hangup()))


def test_the_reminder_call_is_unchanged():
    step = call_flows.step("reminder", call_flows.start("reminder", Answered("human")).state, Keys("1"))
    assert step.actions == (Ask(("reminder.details", "reminder.menu")),)
    assert "purpose" not in step.state


def test_the_recovery_text_names_only_the_clinic_and_a_1_asks_for_a_new_appointment():
    first = call_flows.start_text("text_no_show", {})
    assert (first.actions, first.state) == ((Text("sms.no_show"),), {"node": "offered"})
    rebook = call_flows.reply("text_no_show", first.state, Replied("1"))
    assert (rebook.actions, rebook.effects, rebook.outcome) == ((Text("sms.no_show_rebook_noted"),), (REBOOK,),
                                                               "rebook_requested")
    other = call_flows.reply("text_no_show", first.state, Replied("confirm"))
    assert (other.actions, other.effects, other.state) == ((Text("sms.passed_to_staff"),),
                                                           (OpenTask("unmatched_text"),), first.state)


def test_the_reminder_calls_voice_menu_still_listens_for_its_own_words():
    facts = {"voice_answers": True}
    menu = call_flows.step("reminder", call_flows.start("reminder", Answered("human"), facts).state, Spoken("yes"), facts)
    assert call_flows.listening("reminder", menu.state) == ("yes", "cancel", "reschedule", "repeat", "stop",
                                                            "1", "2", "3", "9")
    assert menu.actions == (Ask(("reminder.details", "reminder.menu_voice"), listen=call_flows.listening(
        "reminder", menu.state)),)


def test_stop_and_emergency_work_in_the_recovery_call():
    facts = {"voice_answers": True, "can_transfer": True}
    stop = walk(["1", Spoken("stop")], facts)
    assert stop.state["node"] == "confirm_stop" and stop.state["purpose"] == "no_show"
    back = call_flows.step("no_show", stop.state, Keys("2"), facts)
    assert back.actions == (Ask(("no_show.offer_voice",), listen=("yes", "no", "repeat", "stop", "1", "2", "9")),)
    assert walk(["1", Spoken("emergency")], facts).outcome == "emergency"


def test_a_reply_after_the_visit_changed_is_not_taken():
    first = call_flows.start_text("text_no_show", {"appointment": "missed"})
    changed = call_flows.reply("text_no_show", first.state, Replied("1"), {"appointment": "booked-again"})
    assert (changed.actions, changed.effects, changed.outcome) == ((Text("sms.changed_meanwhile"),), (),
                                                                  "appointment_changed")


def test_the_no_show_call_renders_the_reminder_prompts_it_speaks_and_never_the_reminders_details():
    """Before a call, its job renders every prompt the flow may speak (personal ones land on disk
    for the call's length): the no-show call's walk decides which reminder prompts those are."""
    import prompts
    from ivr.prompt_audio import flow_prompt_keys
    from tests.prompts.test_catalogues import heard_in

    keys = set(flow_prompt_keys(prompts.load("en"), "no_show"))
    spoken_by_the_call = {call_flows.split_language(h.key)[1] for h in heard_in("no_show")}
    assert {"reminder.greeting", "reminder.voicemail", "no_show.missed"} <= spoken_by_the_call <= keys
    assert "reminder.details" not in keys and "reminder.menu" not in keys
