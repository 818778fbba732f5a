"""Prompt catalogues: every key the flows use exists, with the placeholders the server fills."""

import dataclasses
import functools
import json
import re
from dataclasses import dataclass

import pytest

import prompts
from call_flows import (Answered, DialResult, Enqueue, Keys, LeftQueue, OpenTask, PlanCallBack, PlanRetry,
                        QUEUE_RESULTS, Recorded, Replied, Silence, Spoken, Transfer)
import call_flows

MEDICATIONS = {"medication_1", "medication_2", "medication_3"}
SERVER_VALUES = {"clinic", "clinic_phone", "first_name", "date", "time", "location", "provider", "opens",
                 "ahead", "wait_minutes", "medication", *MEDICATIONS}
PATIENT_VALUES = {"date", "time", "location", "provider", "first_name", "medication", *MEDICATIONS}
# Said outside any flow: the staff whisper, a call to a number no clinic uses, and the texts the
# shell sends on its own (answers to keywords, unmatched texts, missed calls).
OUTSIDE_FLOWS = {"inbound.whisper", "inbound.staff_choice", "inbound.callback_whisper",
                 *(f"inbound.did_{thing}" for thing in ("confirm", "cancel", "refill")),
                 "inbound.callback_whisper_patient", "inbound.unknown_number", "sms.help", "sms.opted_out", "sms.passed_to_staff",
                 "sms.text_back",
                 # the queue's wait (the caller's place and wait, and the call-back offer), and
                 # what staff rung for a caller who stopped waiting hear
                 *(f"inbound.queue_{part}" for part in ("next", "one_ahead", "ahead", "wait_minute", "wait_minutes",
                                                         "call_back", "caller_gone"))}

DIAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
# What the caller may do at any question: every key, silence, words not understood, every intent,
# and on the inbound line a right and a wrong date of birth, keyed and said.
INPUTS = ([Keys(k) for k in "0123456789*#"] + [Silence(), Spoken(None)]
          + [Spoken(i) for i in ("yes", "no", "cancel", "reschedule", "repeat", "emergency", "stop",
                                 "appointment", "refill", "operator")]
          + [DialResult(status) for status in DIAL_STATUSES] + [LeftQueue(result) for result in QUEUE_RESULTS]
          + [Keys("04121950"), Keys("01011990"), Spoken("date", 0.9, "1950-04-12"),
             Spoken("date", 0.9, "1990-01-01"), Recorded("ab" * 16, 12)])
FACTS = [{"voice_answers": voice, "can_transfer": transfer, "senior": senior}
         for voice in (False, True) for transfer in (False, True) for senior in (False, True)]
# A refill call may or may not have a pharmacy (or staff) to put the patient through to.
REFILL_FACTS = [{**facts, "can_reach_pharmacy": pharmacy} for facts in FACTS for pharmacy in (False, True)]
# The inbound line also knows the caller's number's patients, their prescriptions and whether a
# call back can be made: every mix of them.
INBOUND_FACTS = [{**facts, **appointment, "can_hear_dates": facts["voice_answers"], "staff_lines": 2,
                  "language": "en", "languages": {"1": "en", "2": "es"}, "callers": callers,
                  "prescriptions": prescriptions, "can_call_back": call_back}
                 for facts in FACTS
                 for callers in ([], [{"patient": 1, "dob": "04121950"}],
                                 [{"patient": 1, "dob": "04121950"}, {"patient": 2, "dob": "04121950"}])
                 for prescriptions in ([], [11, 12, 13], [11, 12, 13, 14])
                 for call_back in (False, True)
                 for appointment in ({}, {"appointment": None})]
# Callers handed to a person wait in the clinic's queue (every mix above that has staff to take them).
INBOUND_FACTS += [{**facts, "queue": True} for facts in INBOUND_FACTS if facts["can_transfer"] and not facts["senior"]]
# After hours, with and without a known next opening, a number to call back, languages to offer.
INBOUND_FACTS += [{**INBOUND_FACTS[0], "open": False, "opens_known": known, "can_call_back": call_back,
                   "languages": languages}
                  for known in (False, True) for call_back in (False, True)
                  for languages in ({"1": "en"}, {"1": "en", "2": "es"})]


@dataclass(frozen=True)
class Heard:
    """One prompt a flow can speak, and whether the caller can hear it before confirming who they
    are, and whether it is part of the question that asks them exactly that."""

    key: str
    before_identity: bool
    identity_question: bool


def walk(flow: str):
    """Every step the flow can take, with whether the caller had confirmed who they are before it,
    found by walking every state it can reach from every way a call can be answered, with every
    input, with the appointment changed by someone else at any point."""
    for facts in (INBOUND_FACTS if flow == "inbound" else REFILL_FACTS if flow == "refill" else FACTS):
        # An inbound caller may have no appointment at all (facts say so); else it (or a refill
        # call's prescription) is as the call found it, or changed by someone else since.
        booked = {"appointment": "as-called", "prescription": "as-called", **facts}
        changed = {**facts, "appointment": "changed-since", "prescription": "changed-since"}
        frontier = [(call_flows.start(flow, Answered(answered_by), booked), False)
                    for answered_by in (None, "human", "machine_end_beep")]
        seen: set[tuple[str, bool]] = set()
        while frontier:
            step, identified = frontier.pop()
            yield step, identified
            identified = identified or step.decision == "identity_confirmed"
            # What the line did for staff to hear ("did") is only carried, never read by the flow:
            # states that differ only in it behave alike, so the walk visits one of them.
            marker = (json.dumps({k: v for k, v in step.state.items() if k != "did"}, sort_keys=True), identified)
            if step.done or marker in seen:
                continue
            seen.add(marker)
            frontier += [(call_flows.step(flow, step.state, caller_input, now), identified)
                         for caller_input in INPUTS for now in (booked, changed)]


@functools.cache
def heard_in(flow: str) -> set[Heard]:
    """Every prompt the flow can speak. A step whose decision is identity_confirmed speaks after
    identity, and so does everything that follows it."""
    found: set[Heard] = set()
    for step, identified in walk(flow):
        identified = identified or step.decision == "identity_confirmed"
        asks_identity = step.state.get("node") == "identify"
        found.update(Heard(key, not identified, asks_identity) for key in step.prompts())
    return found


@functools.cache
def whispers_in(flow: str) -> set[tuple[str, bool]]:
    """Every whisper staff can hear before a caller of the flow is put through, with whether
    the caller had proved who they are."""
    found = set()
    for step, identified in walk(flow):
        identified = identified or step.decision == "identity_confirmed"
        found.update((a.whisper, identified) for a in step.actions if isinstance(a, Transfer) and a.whisper)
        # A queued caller's staff hear the whisper of the reason they were handed over for.
        found.update((call_flows.inbound.WHISPERS[step.state["reason"]], identified)
                     for a in step.actions if isinstance(a, Enqueue))
    return found


def all_prompt_keys() -> set[str]:
    """Every key any flow, the failure path or the shell can speak (a prompt said in another
    language than the call's counts as its key)."""
    keys = {call_flows.split_language(heard.key)[1] for flow in call_flows.FLOWS for heard in heard_in(flow)}
    keys |= {key for flow in call_flows.FLOWS for key, _ in whispers_in(flow)}
    keys |= {key for flow in call_flows.TEXT_FLOWS for step in walk_texts(flow) for key in step.prompts()}
    for step in failures():
        keys.update(step.prompts())
    return keys | OUTSIDE_FLOWS


def failures():
    """Every way a failed step can end (staff or not; a task recorded or not)."""
    return [call_flows.failure(transfer, promise) for transfer in (True, False) for promise in (True, False)]


@pytest.mark.parametrize("language", prompts.available_languages())
def test_every_key_the_flows_speak_is_in_the_catalogue(language):
    catalogue = prompts.load(language)
    keys = all_prompt_keys()
    assert keys - set(catalogue.texts) == set()
    for key in keys:
        assert catalogue.placeholders(key) <= SERVER_VALUES, key


@pytest.mark.parametrize("flow", sorted(call_flows.FLOWS))
@pytest.mark.parametrize("language", prompts.available_languages())
def test_nothing_about_the_patient_is_said_before_they_confirm_who_they_are(flow, language):
    """The one exception (docs/ARCHITECTURE.md): the question that asks whether the patient
    answered names their first name, since a person cannot say otherwise."""
    catalogue = prompts.load(language)
    before = [heard for heard in heard_in(flow) if heard.before_identity]
    assert before, "the walk found nothing said before identity: the test would prove nothing"
    for heard in before:
        allowed = {"first_name"} if heard.identity_question else set()
        assert catalogue.placeholders(call_flows.split_language(heard.key)[1]) & PATIENT_VALUES <= allowed, heard


@pytest.mark.parametrize("flow", sorted(call_flows.FLOWS))
def test_staff_hear_a_callers_name_only_once_the_caller_proved_who_they_are(flow):
    catalogue = prompts.load("en")
    for whisper, identified in whispers_in(flow):
        if not identified:
            assert catalogue.placeholders(whisper) & PATIENT_VALUES == set(), whisper


def test_the_walk_sees_the_details_after_identity_and_the_name_only_in_its_question():
    """The walk itself: if it mislabelled steps, the test above would pass for the wrong reason."""
    reminder = heard_in("reminder")
    assert Heard("reminder.details", False, False) in reminder
    assert not any(h.key == "reminder.details" and h.before_identity for h in reminder)
    assert Heard("reminder.identify", True, True) in reminder
    assert Heard("reminder.voicemail", True, False) in reminder
    assert any(h.key == "reminder.changed_meanwhile" for h in reminder)


# Said to staff only, once a call back is theirs to make: the caller's first name when the line
# had identified them (the shell picks the prompt by that).
STAFF_ONLY = {"inbound.callback_whisper_patient"}


def test_every_thing_the_line_does_for_staff_to_hear_has_its_sentence():
    from call_flows import inbound

    assert {f"inbound.did_{thing}" for thing in inbound.DONE_FOR_STAFF.values()} <= OUTSIDE_FLOWS


def test_shell_prompts_carry_no_patient_details():
    for key in (OUTSIDE_FLOWS - STAFF_ONLY) | {key for step in failures() for key in step.prompts()}:
        assert prompts.load("en").placeholders(key) & PATIENT_VALUES == set(), key


def question_keys() -> set[str]:
    """Every question the call flows ask (the date of birth aside: its example is eight digits)."""
    from call_flows import inbound, reminder

    keys = {key for flow in (reminder, inbound) for table in (flow.QUESTIONS, flow.VOICE_QUESTIONS)
            for prompts_ in table.values() for key in prompts_}
    return keys - {"inbound.dob", "inbound.dob_voice", "reminder.details"}


@pytest.mark.parametrize("language", prompts.available_languages())
def test_menus_read_one_option_per_sentence(language):
    """A listener keeps one choice in mind at a time: no sentence names two keys."""
    catalogue = prompts.load(language)
    values = {name: "X" for name in SERVER_VALUES}
    checked = 0
    for key in sorted(question_keys() | {"inbound.repeat_or_person"}):
        for sentence in re.split(r"(?<=[.?!])\s+", catalogue.text(key, values)):
            assert len(re.findall(r"(?<!\d)\d(?!\d)", sentence)) <= 1, (key, sentence)
            checked += 1
    assert checked > 20


def test_missing_key_and_missing_value_are_clear_errors():
    catalogue = prompts.load("en")
    with pytest.raises(prompts.PromptError, match="'reminder.nope' is missing"):
        catalogue.text("reminder.nope", {})
    with pytest.raises(prompts.PromptError, match="needs a value for 'clinic'"):
        catalogue.text("reminder.greeting", {})


def test_every_catalogue_key_is_spoken_somewhere():
    """A prompt no flow uses is dead text that translators would still have to keep up."""
    from prompts.spoken import PROVIDER_TITLES
    # The pieces of values: where a visit is, when a closed clinic opens, each title a provider may have.
    value_phrases = {"phrases.at_location", "phrases.when"} | {f"phrases.{title}" for title in PROVIDER_TITLES}
    assert set(prompts.load("en").texts) - all_prompt_keys() - value_phrases == set()


def test_the_catalogues_pass_their_own_check():
    from prompts.check import problems
    assert problems() == []


def test_the_check_catches_a_missing_key_a_wrong_placeholder_and_hard_english(monkeypatch):
    from prompts import check

    real = prompts.load

    def doctored(language):
        catalogue = real(language)
        texts = dict(catalogue.texts)
        if language == "es":
            del texts["reminder.kept"]
            texts["reminder.greeting"] = "Hola. Le llama {clinica}."
        if language == "en":
            texts["reminder.kept"] = ("Notwithstanding considerable administrative complications, "
                                      "your appointment remains provisionally unaltered.")
        return dataclasses.replace(catalogue, texts=texts)

    monkeypatch.setattr(prompts, "load", doctored)
    found = check.problems()
    assert "es: missing reminder.kept" in found
    assert "es: reminder.greeting has placeholders ['clinica'], en has ['clinic']" in found
    assert any(line.startswith("en: reminder.kept reads at grade") for line in found)


# Words that promise someone will do something. Every prompt whose English says so is listed here
# with what backs it; a new promising prompt fails the test below until it is backed.
PROMISE = re.compile(r"\b(will (call|try|contact|text|send|get back)|call you back|get back to you)\b", re.I)
PROMISES = {"reminder.reschedule_noted": {OpenTask("reschedule_request", within_business_days=1)},
            "reminder.wrong_person": {OpenTask("wrong_person"), PlanRetry()},
            "common.apology_call_back": {OpenTask("call_back")},
            "sms.reschedule_noted": {OpenTask("reschedule_request", within_business_days=1)},
            "sms.passed_to_staff": {OpenTask("unmatched_text")},
            "sms.text_back": {OpenTask("call_back", within_business_days=1)},
            "inbound.refill_noted": {OpenTask("refill_request", within_business_days=1)},
            "inbound.call_back": {OpenTask("call_back", within_business_days=1)},
            "inbound.nobody_available_call_back": {OpenTask("call_back", within_business_days=1)},
            "inbound.message_taken": {OpenTask("voicemail_review", within_business_days=1)},
            "inbound.no_message_call_back": {OpenTask("call_back", within_business_days=1)},
            "inbound.call_back_planned": {PlanCallBack()},
            "no_show.rebook_noted": {OpenTask("rebook_request", within_business_days=1)},
            "refill.noted": {OpenTask("refill_request", within_business_days=1)},
            "sms.no_show_rebook_noted": {OpenTask("rebook_request", within_business_days=1)}}


def backing(effects) -> set:
    """A step's effects as promises name them (which prescription a refill is for aside)."""
    return {dataclasses.replace(e, prescription_id=None, voicemail=None) if isinstance(e, OpenTask) else e
            for e in effects}


def test_the_list_of_promising_prompts_is_complete():
    english = prompts.load("en")
    assert {key for key, text in english.texts.items() if PROMISE.search(text)} == set(PROMISES)


@pytest.mark.parametrize("flow", sorted(call_flows.FLOWS))
def test_every_promise_a_flow_speaks_comes_with_a_task_or_a_planned_call(flow):
    """Walks every step the flow can take: each one that speaks a promise carries its follow-up
    (the shell records it in the same transaction as the decision)."""
    spoken = 0
    for step, _identified in [*walk(flow), *((s, False) for s in failures())]:
        for key in set(step.prompts()) & set(PROMISES):
            spoken += 1
            assert backing(step.effects) & PROMISES[key], (key, step)
    if flow in ("reminder", "inbound", "no_show", "refill"):
        assert spoken, "the walk met no promise: the test would prove nothing"


REPLIES = [Replied(i) for i in (None, "confirm", "reschedule", "cancel", "details", "refill", "1", "2", "3", "9")]


def walk_texts(flow: str):
    """Every step a text flow can take, from both ways it starts, with every reply, with the
    appointment changed by someone else at any point."""
    seen: set[str] = set()
    for private in (False, True):
        booked = {"appointment": "as-sent", "prescription": "as-sent", "private": private}
        frontier = [call_flows.start_text(flow, booked)]
        while frontier:
            step = frontier.pop()
            yield step
            marker = json.dumps(dict(step.state), sort_keys=True)
            if step.done or marker in seen:
                continue
            seen.add(marker)
            frontier += [call_flows.reply(flow, step.state, replied, now) for replied in REPLIES
                         for now in (booked, {**booked, "appointment": "changed-since",
                                              "prescription": "changed-since"})]


@pytest.mark.parametrize("flow", sorted(call_flows.TEXT_FLOWS))
def test_every_promise_a_text_flow_sends_comes_with_its_follow_up(flow):
    spoken = 0
    for step in walk_texts(flow):
        for key in set(step.prompts()) & set(PROMISES):
            spoken += 1
            assert set(step.effects) & PROMISES[key], (key, step)
    assert spoken
