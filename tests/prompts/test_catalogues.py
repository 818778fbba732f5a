"""Prompt catalogues: every key the flows use exists, with the placeholders the server fills."""

import pytest

import prompts
from call_flows import Answered, DialResult, Keys, Silence, Spoken
import call_flows

SERVER_VALUES = {"clinic", "clinic_phone", "first_name", "date", "time", "location", "provider"}
BEFORE_IDENTITY = ("reminder.greeting", "reminder.identify", "reminder.wrong_person",
                   "reminder.voicemail", "reminder.no_response", "common.no_input",
                   "common.invalid_key", "common.apology_transfer", "common.apology_call_back",
                   "common.not_understood", "common.emergency", "common.emergency_transfer",
                   "reminder.identify_voice", "reminder.stop_check_voice", "reminder.opted_out",
                   "inbound.welcome", "inbound.connecting", "inbound.whisper", "inbound.no_staff",
                   "inbound.nobody_available", "inbound.unknown_number")
PHI_VALUES = {"date", "time", "location", "provider", "first_name"}
# The one exception (docs/ARCHITECTURE.md): the identity question names the first name, since a
# person cannot say whether they are the patient otherwise.
FIRST_NAME_ALLOWED = {"reminder.identify", "reminder.identify_voice"}


def all_prompt_keys():
    keys = set()
    for facts in ({}, {"voice_answers": True, "can_transfer": True}, {"voice_answers": True}):
        for answered in ("human", "machine_end_beep"):
            keys.update(call_flows.start("reminder", Answered(answered), facts).prompts())
        for node in ("identify", "menu", "confirm_cancel", "confirm_stop"):
            for misses in (0, 2):
                inputs = [Keys(k) for k in "0123456789"] + [Silence(), Spoken(None)] + \
                    [Spoken(i) for i in ("yes", "no", "cancel", "reschedule", "repeat", "emergency", "stop")]
                for caller_input in inputs:
                    keys.update(call_flows.step("reminder", {"node": node, "misses": misses},
                                                caller_input, facts).prompts())
    for can in (True, False):
        keys.update(call_flows.failure(can).prompts())
        keys.update(call_flows.start("inbound", Answered(), {"can_transfer": can}).prompts())
    for status in ("completed", "no-answer"):
        keys.update(call_flows.step("inbound", {"node": "transferring"}, DialResult(status)).prompts())
    return keys | {"inbound.whisper", "inbound.unknown_number"}


@pytest.mark.parametrize("language", prompts.available_languages())
def test_every_key_the_flows_speak_is_in_the_catalogue(language):
    catalogue = prompts.load(language)
    keys = all_prompt_keys()
    assert keys - set(catalogue.texts) == set()
    for key in keys:
        assert catalogue.placeholders(key) <= SERVER_VALUES, key


@pytest.mark.parametrize("key", BEFORE_IDENTITY)
def test_prompts_heard_before_identity_carry_no_patient_details(key):
    allowed = {"first_name"} if key in FIRST_NAME_ALLOWED else set()
    assert prompts.load("en").placeholders(key) & PHI_VALUES <= allowed


def test_missing_key_and_missing_value_are_clear_errors():
    catalogue = prompts.load("en")
    with pytest.raises(prompts.PromptError, match="'reminder.nope' is missing"):
        catalogue.text("reminder.nope", {})
    with pytest.raises(prompts.PromptError, match="needs a value for 'clinic'"):
        catalogue.text("reminder.greeting", {})


def test_every_catalogue_key_is_spoken_somewhere():
    """A prompt no flow uses is dead text that translators would still have to keep up."""
    assert set(prompts.load("en").texts) - all_prompt_keys() == set()


def test_the_catalogues_pass_their_own_check():
    from prompts.check import problems
    assert problems() == []


def test_the_check_catches_a_missing_key_a_wrong_placeholder_and_hard_english(monkeypatch):
    import dataclasses

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
