"""The refill prompt, by call and by text: the medication is named only to the patient, a refill
asked for is a task for the pharmacy team (confirmed by text), and 0 reaches the pharmacy."""

import pytest

import call_flows
from call_flows import (Answered, Ask, DialResult, Hangup, Keys, OpenTask, Replied, Say, Silence, Spoken, Text,
                        TextPatient, Transfer)

REFILL = OpenTask("refill_request", within_business_days=1)
CONFIRMED_BY_TEXT = TextPatient("sms.refill_noted")
FACTS = {"prescription": "as-called", "can_reach_pharmacy": True}


def walk(keys, facts=FACTS, later=None):
    step = call_flows.start("refill", Answered("human"), facts)
    for key in keys:
        step = call_flows.step("refill", step.state, key if not isinstance(key, str) else Keys(key), later or facts)
    return step


def test_the_call_asks_who_answered_before_naming_any_medication():
    step = walk([])
    assert step.actions == (Ask(("reminder.greeting", "reminder.identify")),)
    assert step.state == {"node": "identify", "misses": 0, "purpose": "refill", "prescription": "as-called"}


def test_a_machine_gets_the_voicemail_that_names_nothing():
    step = call_flows.start("refill", Answered("machine_end_beep"), FACTS)
    assert (step.actions, step.outcome, step.effects) == ((Say("reminder.voicemail"), Hangup()), "voicemail", ())


@pytest.mark.parametrize("keys,actions,outcome,effects", [
    (["1"], (Ask(("refill.due", "refill.offer")),), None, ()),
    (["1", "1"], (Say("refill.noted"), Hangup()), "refill_requested", (REFILL, CONFIRMED_BY_TEXT)),
    (["1", "0"], (Say("refill.connecting"), Transfer(pharmacy=True)), None, ()),
    (["1", "2"], (Say("refill.declined"), Hangup()), "refill_declined", ()),
    (["1", "9"], (Ask(("refill.due", "refill.offer")),), None, ()),
    (["1", "3"], (Ask(("common.invalid_key", "refill.offer")),), None, ()),
    (["2"], (Say("reminder.wrong_person"), Hangup()), "wrong_person", (OpenTask("wrong_person"),)),
])
def test_each_answer(keys, actions, outcome, effects):
    step = walk(keys)
    assert (step.actions, step.outcome, step.effects) == (actions, outcome, effects)
    assert step.state["purpose"] == "refill"


def test_a_transfer_the_pharmacy_takes_ends_the_call_and_one_it_does_not_brings_back_the_offer():
    taken = walk(["1", "0", DialResult("completed")])
    assert (taken.actions, taken.outcome) == ((Hangup(),), "to_pharmacy")
    for status in ("busy", "no-answer", "failed", "canceled"):
        missed = walk(["1", "0", DialResult(status)])
        assert (missed.actions, missed.outcome) == (
            (Ask(("refill.pharmacy_unanswered", "refill.offer")),), None), status
    # Still there, the patient asks for the refill by key instead.
    asked = walk(["1", "0", DialResult("no-answer"), "1"])
    assert (asked.outcome, asked.effects) == ("refill_requested", (REFILL, CONFIRMED_BY_TEXT))


def test_with_nobody_to_put_them_through_to_0_gives_the_number_to_call():
    step = walk(["1", "0"], {**FACTS, "can_reach_pharmacy": False})
    assert (step.actions, step.outcome) == ((Say("refill.call_pharmacy"), Hangup()), "pharmacy_number_given")


def test_by_voice_refill_asks_for_it_and_person_reaches_the_pharmacy():
    facts = {**FACTS, "voice_answers": True}
    offered = walk([Spoken("yes")], facts)
    listen = ("refill", "yes", "no", "operator", "repeat", "stop", "0", "1", "2", "9")
    assert offered.actions == (Ask(("refill.due", "refill.offer_voice"), listen=listen),)
    assert call_flows.listening("refill", offered.state) == listen
    assert walk([Spoken("yes"), Spoken("refill")], facts).outcome == "refill_requested"
    assert walk([Spoken("yes"), Spoken("operator")], facts).actions[-1] == Transfer(pharmacy=True)
    assert walk([Spoken("yes"), Spoken("no")], facts).outcome == "refill_declined"


def test_a_prescription_refilled_or_stopped_during_the_call_is_not_asked_for():
    changed = {**FACTS, "prescription": "refilled-since"}
    step = call_flows.step("refill", walk(["1"]).state, Keys("1"), changed)
    assert (step.actions, step.outcome, step.effects) == ((Say("refill.changed_meanwhile"), Hangup()),
                                                          "prescription_changed", ())
    # Changed before they said who they are: nothing is named, and the change is said after their 1.
    assert walk(["1"], later=changed).outcome == "prescription_changed"


def test_silence_repeats_the_offer_then_closes():
    step = walk(["1", Silence(), Silence(), Silence()])
    assert (step.outcome, step.actions) == ("no_response", (Say("reminder.no_response"), Hangup()))


def test_the_refill_text_names_no_medication_and_a_1_or_the_word_asks_for_it():
    first = call_flows.start_text("text_refill", {"prescription": "as-sent"})
    assert (first.actions, first.state) == ((Text("sms.refill"),), {"node": "offered", "prescription": "as-sent"})
    for reply in ("1", "refill"):
        asked = call_flows.reply("text_refill", first.state, Replied(reply), {"prescription": "as-sent"})
        assert (asked.actions, asked.effects, asked.outcome) == ((Text("sms.refill_noted"),), (REFILL,),
                                                                 "refill_requested")
    other = call_flows.reply("text_refill", first.state, Replied("confirm"), {"prescription": "as-sent"})
    assert (other.actions, other.effects, other.state) == ((Text("sms.passed_to_staff"),),
                                                           (OpenTask("unmatched_text"),), first.state)
    changed = call_flows.reply("text_refill", first.state, Replied("1"), {"prescription": "refilled-since"})
    assert (changed.actions, changed.effects, changed.outcome) == ((Text("sms.refill_changed"),), (),
                                                                  "prescription_changed")


def test_the_refill_texts_name_no_medication_in_any_language():
    import prompts

    for language in ("en", "es", "fr", "ko"):
        catalogue = prompts.load(language)
        for key in ("sms.refill", "sms.refill_noted", "sms.refill_changed"):
            assert "{medication" not in catalogue.texts[key], (language, key)


def test_the_refill_call_renders_the_reminder_prompts_it_speaks_and_never_the_reminders_details():
    import prompts
    from ivr.prompt_audio import flow_prompt_keys
    from tests.prompts.test_catalogues import heard_in

    keys = set(flow_prompt_keys(prompts.load("en"), "refill"))
    spoken_by_the_call = {call_flows.split_language(h.key)[1] for h in heard_in("refill")}
    assert {"reminder.greeting", "reminder.voicemail", "refill.due"} <= spoken_by_the_call <= keys
    assert "reminder.details" not in keys and "reminder.menu" not in keys
