"""The reminder flow as tables: state + input -> prompts, next node, outcome, effects."""

import pytest

import call_flows
from call_flows import Answered, Ask, Hangup, Keys, OpenTask, PlanRetry, Say, SetAppointmentStatus, Silence
from call_flows.reminder import MAX_REPROMPTS


def start():
    return call_flows.start("reminder", Answered("human"))


def test_greeting_says_only_the_clinic_then_asks_who_answered():
    step = start()
    assert step.actions == (Ask(("reminder.greeting", "reminder.identify")),)
    assert step.state == {"node": "identify", "misses": 0}
    assert not step.done


@pytest.mark.parametrize("answered_by", ["machine_end_beep", "machine_end_silence",
                                         "machine_end_other", "machine_start", "fax"])
def test_machine_gets_a_voicemail_without_details_or_keys(answered_by):
    step = call_flows.start("reminder", Answered(answered_by))
    assert step.actions == (Say("reminder.voicemail"), Hangup())
    assert step.outcome == "voicemail"
    assert step.effects == ()


@pytest.mark.parametrize("answered_by", [None, "human", "unknown"])
def test_people_and_unknown_answerers_hear_the_identity_question(answered_by):
    assert call_flows.start("reminder", Answered(answered_by)).state["node"] == "identify"


# node, key -> expected actions, next node, outcome, effects, decision
TRANSITIONS = [
    ("identify", "1", (Ask(("reminder.details", "reminder.menu")),), "menu", None, (), "identity_confirmed"),
    ("identify", "2", (Say("reminder.wrong_person"), Hangup()), "done", "wrong_person",
     (OpenTask("wrong_person"),), "not_the_patient"),
    ("menu", "1", (Say("reminder.confirmed"), Hangup()), "done", "confirmed",
     (SetAppointmentStatus("confirmed"),), "confirm"),
    ("menu", "2", (Ask(("reminder.cancel_check",)),), "confirm_cancel", None, (), "cancel_requested"),
    ("menu", "3", (Say("reminder.reschedule_noted"), Hangup()), "done", "reschedule_requested",
     (SetAppointmentStatus("reschedule_requested"), OpenTask("reschedule_request", within_business_days=1)),
     "reschedule"),
    ("menu", "9", (Ask(("reminder.details", "reminder.menu")),), "menu", None, (), "repeat"),
    ("confirm_cancel", "1", (Say("reminder.cancelled"), Hangup()), "done", "cancelled",
     (SetAppointmentStatus("cancelled"),), "cancel_confirmed"),
    ("confirm_cancel", "2", (Ask(("reminder.kept", "reminder.menu")),), "menu", None, (), "cancel_withdrawn"),
]


@pytest.mark.parametrize("node,key,actions,next_node,outcome,effects,decision", TRANSITIONS)
def test_each_key_on_each_question(node, key, actions, next_node, outcome, effects, decision):
    step = call_flows.step("reminder", {"node": node, "misses": 1}, Keys(key))
    assert step.actions == actions
    assert step.state == {"node": next_node, "misses": 0}
    assert step.outcome == outcome
    assert step.effects == effects
    assert step.decision == decision


QUESTION = {"identify": "reminder.identify", "menu": "reminder.menu",
            "confirm_cancel": "reminder.cancel_check"}


@pytest.mark.parametrize("node", QUESTION)
@pytest.mark.parametrize("caller_input,sorry,decision", [
    (Silence(), "common.no_input", "no_input"),
    (Keys("7"), "common.invalid_key", "invalid_key"),
    (Keys("*"), "common.invalid_key", "invalid_key"),
])
def test_silence_or_wrong_key_reasks_twice_then_closes(node, caller_input, sorry, decision):
    state = {"node": node, "misses": 0}
    for attempt in range(1, MAX_REPROMPTS + 1):
        step = call_flows.step("reminder", state, caller_input)
        assert step.actions == (Ask((sorry, QUESTION[node])),)
        assert step.state == {"node": node, "misses": attempt}
        assert step.decision == decision and not step.done
        state = step.state
    step = call_flows.step("reminder", state, caller_input)
    assert step.actions == (Say("reminder.no_response"), Hangup())
    assert step.outcome == "no_response"
    assert step.effects == ()


@pytest.mark.parametrize("node", QUESTION)
def test_in_senior_mode_each_question_is_said_again_once_before_misses_count(node):
    senior = {"senior": True}
    state = {"node": node, "misses": 0}
    step = call_flows.step("reminder", state, Silence(), senior)
    assert (step.actions, step.decision) == ((Ask((QUESTION[node],)),), "repeated_for_senior")
    assert step.state == {"node": node, "misses": 0, "repeated": True}
    for _ in range(MAX_REPROMPTS):
        step = call_flows.step("reminder", step.state, Silence(), senior)
        assert step.actions == (Ask(("common.no_input", QUESTION[node])),)
    assert call_flows.step("reminder", step.state, Silence(), senior).outcome == "no_response"


def test_a_valid_answer_resets_the_miss_count():
    state = call_flows.step("reminder", {"node": "identify", "misses": 0}, Silence()).state
    state = call_flows.step("reminder", state, Keys("1")).state
    assert state == {"node": "menu", "misses": 0}
    for _ in range(MAX_REPROMPTS):
        state = call_flows.step("reminder", state, Keys("5")).state
    assert call_flows.step("reminder", state, Keys("1")).outcome == "confirmed"


def test_only_the_first_of_several_keys_counts():
    assert call_flows.step("reminder", {"node": "menu", "misses": 0}, Keys("19")).outcome == "confirmed"


def test_nothing_about_the_appointment_before_identity_is_confirmed():
    step = start()
    assert "reminder.details" not in step.prompts()
    for misses in range(MAX_REPROMPTS + 1):
        for caller_input in (Silence(), Keys("3"), Keys("2")):
            later = call_flows.step("reminder", {"node": "identify", "misses": misses}, caller_input)
            assert "reminder.details" not in later.prompts()
            # Nothing changes about the appointment; "not available" only asks for a follow-up.
            assert set(later.effects) <= {OpenTask("wrong_person")}


def test_full_walk_to_confirmation():
    step = start()
    for key in ("1", "9", "2", "2", "1"):
        step = call_flows.step("reminder", step.state, Keys(key))
    assert step.outcome == "confirmed"
    assert step.effects == (SetAppointmentStatus("confirmed"),)


def test_input_after_the_end_hangs_up_without_effects():
    step = call_flows.step("reminder", {"node": "done", "misses": 0}, Keys("1"))
    assert step.actions == (Hangup(),) and step.effects == () and step.outcome is None


def test_unknown_flow_and_corrupt_state_raise_flow_error():
    with pytest.raises(call_flows.FlowError):
        call_flows.start("nope", Answered())
    with pytest.raises(call_flows.FlowError):
        call_flows.step("reminder", {"node": "bogus"}, Keys("1"))


@pytest.mark.parametrize("can_transfer,can_promise,actions,effects", [
    (True, True, (Say("common.apology_transfer"), call_flows.Transfer()), ()),
    (False, True, (Say("common.apology_call_back"), Hangup()), (OpenTask("call_back"),)),
    (False, False, (Say("common.apology_call_again"), Hangup()), ()),
])
def test_failure_step_transfers_or_promises_a_call_back_only_with_its_task(can_transfer, can_promise, actions,
                                                                           effects):
    step = call_flows.failure(can_transfer, can_promise)
    assert (step.actions, step.effects, step.outcome) == (actions, effects, "error")


VOICE = {"voice_answers": True, "can_transfer": True}


def test_voice_answers_change_the_wording_and_listen_for_the_choices():
    step = call_flows.start("reminder", Answered("human"), VOICE)
    assert step.actions == (Ask(("reminder.greeting", "reminder.identify_voice"), listen=("yes", "no", "stop", "1", "2")),)
    keys_only = call_flows.start("reminder", Answered("human"), {})
    assert keys_only.actions[0].listen == ()
    assert call_flows.listening("reminder", {"node": "menu"}) == (
        "yes", "cancel", "reschedule", "repeat", "stop", "1", "2", "3", "9")
    assert call_flows.listening("reminder", {"node": "done"}) == ()


# node, spoken intent -> decision, outcome
SPOKEN = [
    ("identify", "yes", "identity_confirmed", None), ("identify", "no", "not_the_patient", "wrong_person"),
    ("menu", "yes", "confirm", "confirmed"), ("menu", "cancel", "cancel_requested", None),
    ("menu", "reschedule", "reschedule", "reschedule_requested"), ("menu", "repeat", "repeat", None),
    ("confirm_cancel", "yes", "cancel_confirmed", "cancelled"),
    ("confirm_cancel", "cancel", "cancel_confirmed", "cancelled"),
    ("confirm_cancel", "no", "cancel_withdrawn", None),
    # A digit said is the key pressed; one the question has no key for is not understood.
    ("identify", "1", "identity_confirmed", None), ("identify", "2", "not_the_patient", "wrong_person"),
    ("menu", "3", "reschedule", "reschedule_requested"), ("menu", "9", "repeat", None),
    ("menu", "5", "not_understood", None), ("confirm_cancel", "2", "cancel_withdrawn", None),
]


@pytest.mark.parametrize("node,intent,decision,outcome", SPOKEN)
def test_spoken_answers_mean_what_their_keys_mean(node, intent, decision, outcome):
    step = call_flows.step("reminder", {"node": node, "misses": 0}, call_flows.Spoken(intent, 0.9), VOICE)
    assert (step.decision, step.outcome) == (decision, outcome)


@pytest.mark.parametrize("intent", [None, "no", "refill"])
def test_words_not_understood_at_the_menu_reask_with_an_apology(intent):
    step = call_flows.step("reminder", {"node": "menu", "misses": 0}, call_flows.Spoken(intent), VOICE)
    assert step.actions == (Ask(("common.not_understood", "reminder.menu_voice"),
                                listen=("yes", "cancel", "reschedule", "repeat", "stop", "1", "2", "3", "9")),)
    assert step.decision == "not_understood" and step.state["misses"] == 1


def test_a_spoken_cancel_is_read_back_before_it_happens():
    step = call_flows.step("reminder", {"node": "menu", "misses": 0}, call_flows.Spoken("cancel", 0.4), VOICE)
    assert step.effects == () and step.state["node"] == "confirm_cancel"
    assert step.actions == (Ask(("reminder.cancel_check_voice",), listen=("yes", "cancel", "no", "stop", "1", "2")),)


@pytest.mark.parametrize("node", ["identify", "menu", "confirm_cancel"])
@pytest.mark.parametrize("facts,actions", [
    (VOICE, (Say("common.emergency"), Say("common.emergency_transfer"), call_flows.Transfer())),
    ({"voice_answers": True}, (Say("common.emergency"), Hangup())),
])
def test_an_emergency_word_stops_the_flow_at_any_question(node, facts, actions):
    step = call_flows.step("reminder", {"node": node, "misses": 0}, call_flows.Spoken("emergency"), facts)
    assert (step.actions, step.outcome, step.effects) == (actions, "emergency", ())


@pytest.mark.parametrize("node", ["identify", "menu", "confirm_cancel"])
def test_stop_at_any_question_is_read_back_before_anything_happens(node):
    step = call_flows.step("reminder", {"node": node, "misses": 0}, call_flows.Spoken("stop", 0.5), VOICE)
    assert step.actions == (Ask(("reminder.stop_check_voice",), listen=("yes", "stop", "no", "1", "2")),)
    assert step.state == {"node": "confirm_stop", "misses": 0, "back_to": node}
    assert step.effects == () and step.decision == "stop_requested"


@pytest.mark.parametrize("answer", [call_flows.Spoken("yes"), call_flows.Spoken("stop"), Keys("1")])
def test_a_confirmed_stop_opts_the_number_out(answer):
    step = call_flows.step("reminder", {"node": "confirm_stop", "misses": 0, "back_to": "menu"}, answer, VOICE)
    assert step.actions == (Say("reminder.opted_out"), Hangup())
    assert (step.effects, step.outcome) == ((call_flows.OptOut("voice"),), "opted_out")


@pytest.mark.parametrize("answer", [call_flows.Spoken("no"), Keys("2")])
def test_a_withdrawn_stop_returns_to_the_question(answer):
    step = call_flows.step("reminder", {"node": "confirm_stop", "misses": 0, "back_to": "menu"}, answer, VOICE)
    assert step.state == {"node": "menu", "misses": 0} and step.effects == ()
    assert step.actions == (Ask(("reminder.menu_voice",), listen=("yes", "cancel", "reschedule", "repeat", "stop",
                                                                  "1", "2", "3", "9")),)


def test_an_unclear_answer_to_the_stop_read_back_asks_again_then_closes_without_opting_out():
    state = {"node": "confirm_stop", "misses": 0, "back_to": "identify"}
    for attempt in (1, 2):
        step = call_flows.step("reminder", state, call_flows.Spoken(None), VOICE)
        assert step.actions == (Ask(("common.not_understood", "reminder.stop_check_voice"),
                                    listen=("yes", "stop", "no", "1", "2")),)
        state = step.state
        assert state["misses"] == attempt and state["back_to"] == "identify"
    step = call_flows.step("reminder", state, call_flows.Spoken(None), VOICE)
    assert (step.outcome, step.effects) == ("no_response", ())


@pytest.mark.parametrize("facts,effect", [
    ({"can_retry": True}, PlanRetry()),                 # the clinic rings again tomorrow, once
    ({"can_retry": False}, OpenTask("wrong_person")),   # a person follows up
    ({}, OpenTask("wrong_person")),
])
def test_someone_else_answering_is_followed_up_as_the_prompt_promises(facts, effect):
    """"We will try again another time" is always backed by a planned call or a task."""
    step = call_flows.step("reminder", {"node": "identify", "misses": 0}, Keys("2"), facts)
    assert step.prompts() == ["reminder.wrong_person"] and step.effects == (effect,)
