"""The inbound line as a pure flow: language offer, identity by date of birth (households too),
at most three choices, a person whenever asked or after two misses, emergencies at any answer."""

import pytest

import call_flows
from call_flows import (Answered, Ask, DialResult, Enqueue, Escalate, EscalationEnded, Hangup, Identify, Keys,
                        LeftQueue, OpenTask,
                        PlanCallBack, Recorded, RememberLanguage, Say, SetAppointmentStatus, Silence, Spoken,
                        TakeMessage, Transfer)

JANE = {"patient": 7, "dob": "04121950"}
FACTS = {"language": "en", "languages": {"1": "en", "2": "es"}, "callers": [JANE], "can_transfer": True,
         "can_call_back": True, "appointment": "fp-1", "prescriptions": [31, 32]}
DOB_ASK = Ask(("inbound.dob", "inbound.person_anytime"), num_digits=8, timeout=10)
MENU = ("inbound.menu",)


def tasks(step):
    """The tasks a step opens (its escalation records aside)."""
    return tuple(e for e in step.effects if isinstance(e, OpenTask))


def walk(*inputs, facts=FACTS):
    """Start a call and feed it inputs; the last step."""
    step = call_flows.start("inbound", Answered(), facts)
    for caller_input in inputs:
        step = call_flows.step("inbound", step.state, caller_input, facts)
    return step


def identified(*inputs, facts=FACTS):
    return walk(Silence(), Keys("04121950"), *inputs, facts=facts)


def test_the_welcome_says_the_emergency_number_and_offers_the_other_languages_briefly():
    step = walk()
    assert step.actions == (Ask(("inbound.welcome", "common.emergency", "es:inbound.language_offer"), timeout=3),)


def test_with_one_language_the_welcome_goes_straight_to_the_date_of_birth():
    step = walk(facts={**FACTS, "languages": {"1": "en"}})
    assert step.actions == (Ask(("inbound.welcome", "common.emergency", "inbound.dob", "inbound.person_anytime"),
                                num_digits=8, timeout=10),)


def test_choosing_a_language_switches_and_remembers_it_while_waiting_keeps_the_language():
    chosen = walk(Keys("2"))
    assert (chosen.state["language"], chosen.effects, chosen.actions) == ("es", (RememberLanguage("es"),), (DOB_ASK,))
    kept = walk(Silence())
    assert ("language" not in kept.state, kept.effects, kept.decision) == (True, (), "language_kept")
    assert walk(Keys("1")).effects == ()      # the language the call is already in


def test_the_chosen_language_stays_with_the_call():
    assert walk(Keys("2"), Keys("04121950"), Keys("9")).state["language"] == "es"


def test_a_matching_date_of_birth_identifies_the_caller_and_only_then_greets_them_by_name():
    step = identified()
    assert step.effects == (Identify(7),) and step.decision == "identity_confirmed"
    assert step.actions == (Ask(("inbound.hello", *MENU)),) and step.state["patient"] == 7


def test_a_spoken_date_of_birth_counts_like_keys():
    facts = {**FACTS, "voice_answers": True, "can_hear_dates": True}
    asked = walk(Silence(), facts=facts)
    assert asked.actions[0].listen == ("=date",) and asked.actions[0].prompts[0] == "inbound.dob_voice"
    step = walk(Silence(), Spoken("date", 0.8, "1950-04-12"), facts=facts)
    assert step.effects == (Identify(7),)


def test_where_spoken_dates_cannot_be_read_the_date_is_asked_for_by_keys():
    """Voice answers on, but no engine here reads dates in the language (Korean, pocketsphinx)."""
    asked = walk(Silence(), facts={**FACTS, "voice_answers": True, "can_hear_dates": False})
    assert asked.actions == (DOB_ASK,)


def test_a_key_pressed_instead_of_speaking_asks_for_the_whole_date_by_keys():
    """A recording stops at the first key: the other seven would be lost, so all eight are asked for."""
    facts = {**FACTS, "voice_answers": True, "can_hear_dates": True}
    asked = walk(Silence(), facts=facts)
    assert asked.actions[0].max_seconds == 10
    switched = walk(Silence(), Keys("1"), facts=facts)
    assert switched.actions == (DOB_ASK,) and switched.decision == "dob_by_keys"
    assert walk(Silence(), Keys("1"), Keys("04121950"), facts=facts).effects == (Identify(7),)
    # 0 is still a person, as the question says.
    assert walk(Silence(), Keys("0"), facts=facts).actions[-1] == Transfer(whisper="inbound.whisper_not_verified")


def test_a_household_is_told_apart_by_date_of_birth_without_saying_a_name():
    household = {**FACTS, "callers": [JANE, {"patient": 8, "dob": "11021948"}]}
    assert walk(Silence(), Keys("11021948"), facts=household).effects == (Identify(8),)


def test_twins_on_one_number_go_to_a_person_unverified():
    twins = {**FACTS, "callers": [JANE, {"patient": 9, "dob": "04121950"}]}
    step = walk(Silence(), Keys("04121950"), facts=twins)
    assert step.actions[-1] == Transfer(whisper="inbound.whisper_not_verified")
    assert step.effects == (Escalate("not_verified"),)


def test_a_wrong_date_of_birth_is_asked_again_once_then_a_person():
    once = walk(Silence(), Keys("01011990"))
    assert once.actions == (Ask(("inbound.dob_mismatch", "inbound.dob", "inbound.person_anytime"), num_digits=8,
                                timeout=10),)
    twice = walk(Silence(), Keys("01011990"), Keys("02021990"))
    assert twice.actions == (Say("inbound.dob_mismatch"), Say("inbound.connecting"),
                             Transfer(whisper="inbound.whisper_not_verified"))
    assert "patient" not in twice.state


def test_an_unknown_number_is_asked_and_answered_exactly_like_a_patients_number():
    """Whether a number is a patient's is not said to whoever calls from it."""
    unknown = {**FACTS, "callers": []}
    for inputs in [(Silence(),), (Silence(), Keys("04121950")), (Silence(), Keys("01011990"))]:
        assert walk(*inputs, facts=unknown).actions == walk(*inputs, facts={**FACTS, "callers": [
            {"patient": 9, "dob": "12121912"}]}).actions
    twice = walk(Silence(), Keys("04121950"), Keys("04121950"), facts=unknown)
    assert twice.actions == (Say("inbound.dob_mismatch"), Say("inbound.connecting"), Transfer(whisper="inbound.whisper"))


def test_staff_hear_a_patients_number_apart_from_an_unknown_one():
    on_file_without_a_date = {**FACTS, "callers": [], "number_known": True}
    step = walk(Silence(), Keys("0"), facts=on_file_without_a_date)
    assert step.actions[-1] == Transfer(whisper="inbound.whisper_not_verified")


def test_without_staff_a_call_back_when_we_have_the_number_else_when_to_call():
    unknown = {**FACTS, "callers": [], "can_transfer": False}
    no_staff = walk(Silence(), Keys("0"), facts=unknown)
    assert no_staff.actions == (Say("inbound.call_back"), Hangup())
    assert no_staff.effects == (Escalate("unknown"), OpenTask("call_back", within_business_days=1),
                                EscalationEnded("call_back"))
    withheld = walk(Silence(), Keys("0"), facts={**unknown, "can_call_back": False})
    assert withheld.actions == (Say("inbound.no_staff"), Hangup())
    assert withheld.effects == (Escalate("unknown"), EscalationEnded("unanswered"))


def test_zero_at_the_language_offer_reaches_a_person():
    assert walk(Keys("0")).actions[-1] == Transfer(whisper="inbound.whisper_not_verified")


@pytest.mark.parametrize("node_inputs", [(), (Silence(),), (Silence(), Keys("04121950")),
                                         (Silence(), Keys("04121950"), Keys("1")),
                                         (Silence(), Keys("04121950"), Keys("2"))])
def test_zero_reaches_a_person_at_any_question(node_inputs):
    step = walk(*node_inputs, Keys("0"))
    assert step.actions[-1].__class__ is Transfer and step.decision == "person_requested"


def test_saying_person_reaches_a_person():
    facts = {**FACTS, "voice_answers": True}
    step = walk(Silence(), Spoken("date", 0.8, "1950-04-12"), Spoken("operator", 0.7), facts=facts)
    assert step.actions[-1] == Transfer(whisper="inbound.whisper_asked")


def test_an_emergency_phrase_at_any_spoken_answer_says_the_number_and_puts_them_through():
    for inputs in [(Silence(),), (Silence(), Keys("04121950")), (Silence(), Keys("04121950"), Keys("2"))]:
        step = walk(*inputs, Spoken("emergency", 0.2))
        assert step.actions == (Say("common.emergency"), Say("common.emergency_transfer"),
                                Transfer(whisper="inbound.whisper_emergency"))


def test_the_next_appointment_is_read_then_confirmed():
    heard = identified(Keys("1"))
    assert heard.actions == (Ask(("reminder.details", "inbound.appointment_menu")),)
    confirmed = identified(Keys("1"), Keys("1"))
    assert confirmed.effects == (SetAppointmentStatus("confirmed"),)
    assert confirmed.actions == (Ask(("inbound.confirmed", "inbound.anything_else", *MENU)),)


def test_a_cancel_is_read_back_and_can_be_withdrawn():
    assert identified(Keys("1"), Keys("2")).actions == (Ask(("reminder.cancel_check",)),)
    assert identified(Keys("1"), Keys("2"), Keys("1")).effects == (SetAppointmentStatus("cancelled"),)
    kept = identified(Keys("1"), Keys("2"), Keys("2"))
    assert kept.effects == () and kept.actions == (Ask(("reminder.kept", "inbound.anything_else", *MENU)),)


def test_an_appointment_changed_by_staff_meanwhile_is_not_confirmed():
    heard = identified(Keys("1"))
    step = call_flows.step("inbound", heard.state, Keys("1"), {**FACTS, "appointment": "fp-2"})
    assert step.effects == () and step.decision == "appointment_changed_meanwhile"


def test_without_an_appointment_the_caller_is_told_and_stays_in_the_menu():
    step = identified(Keys("1"), facts={**FACTS, "appointment": None})
    assert step.actions == (Ask(("inbound.no_appointment", *MENU)),)


def test_each_prescription_is_read_with_its_key_and_the_chosen_one_becomes_a_task():
    choices = identified(Keys("2"))
    assert choices.actions == (Ask(("inbound.refill_which", "inbound.refill_choice_1", "inbound.refill_choice_2",
                                    "inbound.repeat_or_person")),)
    noted = identified(Keys("2"), Keys("2"))
    assert noted.effects == (OpenTask("refill_request", within_business_days=1, prescription_id=32),)
    assert identified(Keys("2"), Keys("3")).decision == "invalid_key"   # only two to choose from


def test_a_prescription_stopped_since_it_was_read_is_not_taken_for_the_next_one():
    read = identified(Keys("2"))
    now = {**FACTS, "prescriptions": [32]}                # 31 was stopped by staff meanwhile
    step = call_flows.step("inbound", read.state, Keys("1"), now)
    assert step.effects == () and step.actions == (Ask(("inbound.refill_which", "inbound.refill_choice_1",
                                                        "inbound.repeat_or_person")),)


def test_too_many_prescriptions_to_read_go_to_a_person_and_none_is_said_plainly():
    many = identified(Keys("2"), facts={**FACTS, "prescriptions": [1, 2, 3, 4]})
    assert many.actions[-1] == Transfer(whisper="inbound.whisper_refill")
    none = identified(Keys("2"), facts={**FACTS, "prescriptions": []})
    assert none.actions == (Ask(("inbound.no_prescriptions", *MENU)),)


def test_two_misses_at_any_question_lead_to_a_person_never_a_hang_up():
    once = identified(Silence())
    assert once.actions == (Ask(("common.no_input", *MENU)),)
    twice = identified(Silence(), Keys("7"))
    assert twice.actions == (Say("common.invalid_key"), Say("inbound.connecting"),
                             Transfer(whisper="inbound.whisper_stuck"))
    no_staff = identified(Silence(), Silence(), facts={**FACTS, "can_transfer": False})
    assert no_staff.actions[-2:] == (Say("inbound.call_back"), Hangup())
    assert tasks(no_staff) == (OpenTask("call_back", within_business_days=1),)


def test_staff_taking_the_call_ends_it_as_answered():
    step = identified(Keys("3"), DialResult("completed"))
    assert (step.outcome, step.effects) == ("transferred", (EscalationEnded("answered", 0),))


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_when_nobody_takes_the_call_the_caller_chooses_a_call_back_or_a_message(status):
    offer = identified(Keys("3"), DialResult(status))
    assert offer.actions == (Ask(("inbound.offer_call_back",)),) and offer.effects == ()
    hold = identified(Keys("3"), DialResult(status), Keys("1"))
    assert (hold.outcome, hold.effects) == ("call_back_planned", (PlanCallBack(), EscalationEnded("call_back")))
    message = identified(Keys("3"), DialResult(status), Keys("2"))
    assert message.actions == (Say("inbound.leave_message"), TakeMessage())
    left = identified(Keys("3"), DialResult(status), Keys("2"), Recorded("ab" * 16, 9))
    assert left.effects == (OpenTask("voicemail_review", within_business_days=1, voicemail="ab" * 16),
                            EscalationEnded("voicemail"))
    waited = identified(Keys("3"), DialResult(status), Silence())
    assert (waited.outcome, waited.effects) == ("call_back_promised", (
        OpenTask("call_back", within_business_days=1), EscalationEnded("call_back")))


def test_nobody_answering_a_caller_we_cannot_call_back_is_told_to_try_later():
    facts = {**FACTS, "callers": [], "can_call_back": False}
    step = walk(Silence(), Keys("0"), DialResult("no-answer"), facts=facts)
    assert step.actions == (Say("inbound.nobody_available"), Hangup()) and tasks(step) == ()


def test_anything_after_the_end_hangs_up():
    assert call_flows.step("inbound", {"node": "done"}, Keys("1")).actions == (Hangup(),)


def test_the_date_of_birth_question_is_sensitive_and_listens_for_a_date():
    asked = walk(Silence())
    assert call_flows.sensitive("inbound", asked.state)
    assert not call_flows.sensitive("inbound", identified().state)
    assert call_flows.listening("inbound", asked.state) == ("=date",)
    assert call_flows.listening("inbound", identified().state) == (
        "appointment", "refill", "operator", "repeat", "1", "2", "3", "9")


def test_in_senior_mode_a_question_is_said_again_as_it_was_before_a_miss_counts():
    facts = {**FACTS, "senior": True}
    again = identified(Silence(), facts=facts)
    assert again.actions == (Ask(MENU),) and again.decision == "repeated_for_senior"
    assert identified(Silence(), Silence(), facts=facts).actions == (Ask(("common.no_input", *MENU)),)
    assert identified(Silence(), Silence(), Silence(), facts=facts).actions[-1].__class__ is Transfer
    # A new question gets its own repeat.
    assert identified(Silence(), Keys("1"), Silence(), facts=facts).decision == "repeated_for_senior"


def test_an_unanswered_or_passed_transfer_tries_the_next_staff_line_then_offers_a_call_back():
    facts = {**FACTS, "staff_lines": 2}
    first = identified(Keys("3"), facts=facts)
    assert first.actions[-1] == Transfer(whisper="inbound.whisper_asked", line=0)
    second = identified(Keys("3"), DialResult("no-answer"), facts=facts)
    assert second.actions == (Say("inbound.still_trying"), Transfer(whisper="inbound.whisper_asked", line=1))
    last = identified(Keys("3"), DialResult("no-answer"), DialResult("no-answer"), facts=facts)
    assert last.actions == (Ask(("inbound.offer_call_back",)),)
    taken = identified(Keys("3"), DialResult("no-answer"), DialResult("completed"), facts=facts)
    assert taken.outcome == "transferred"


def test_a_number_that_guessed_too_many_dates_today_goes_to_a_person_without_trying_again():
    locked = walk(Silence(), facts={**FACTS, "dob_locked": True})
    assert locked.actions == (Say("inbound.connecting"), Transfer(whisper="inbound.whisper_not_verified"))
    assert locked.decision == "identity_locked" and "patient" not in locked.state


QUEUED = {**FACTS, "queue": True}


def test_with_the_queue_a_person_means_waiting_in_it_but_an_emergency_rings_staff_at_once():
    step = identified(Keys("3"), facts=QUEUED)
    assert step.actions == (Say("inbound.connecting"), Enqueue())
    assert (step.state["node"], step.state["reason"], step.effects) == ("queued", "asked", (Escalate("asked"),))
    urgent = identified(Spoken("emergency", 0.9), facts={**QUEUED, "voice_answers": True})
    assert urgent.actions == (Say("common.emergency"), Say("common.emergency_transfer"),
                              Transfer(whisper="inbound.whisper_emergency"))
    assert urgent.state["node"] == "transferring"


@pytest.mark.parametrize("result, actions, effects, outcome", [
    ("answered", (Hangup(),), (EscalationEnded("answered"),), "transferred"),
    ("call_back", (Say("inbound.call_back_planned"), Hangup()), (PlanCallBack(), EscalationEnded("call_back")),
     "call_back_planned"),
    ("hangup", (Hangup(),), (EscalationEnded("abandoned"),), None),
    ("unanswered", (Ask(("inbound.offer_call_back",)),), (), None),
])
def test_how_the_caller_left_the_queue_decides_what_follows(result, actions, effects, outcome):
    step = identified(Keys("3"), LeftQueue(result), facts=QUEUED)
    assert (step.actions, step.effects, step.outcome) == (actions, effects, outcome)


def test_nobody_taking_a_queued_stranger_without_a_number_to_call_ends_plainly():
    facts = {**QUEUED, "callers": [], "can_call_back": False}
    step = walk(Silence(), Keys("0"), LeftQueue("unanswered"), facts=facts)
    assert step.actions == (Say("inbound.nobody_available"), Hangup())
    assert step.effects == (EscalationEnded("unanswered"),)


def test_keys_after_the_queue_are_not_an_answer():
    step = identified(Keys("3"), Keys("1"), facts=QUEUED)
    assert (step.actions, step.decision) == ((Hangup(),), "input_after_end")
