"""Prompts in the clinic's own voice: rendered by the job before it dials, played by webhooks,
served to the carrier, and pre-rendered by `ivr prompts render`."""

import io

import pytest
import soundfile
from sqlalchemy import select, update

import prompts
from ivr.models import CallEvent, Patient
from outbound.jobs import place_touch_call
from speech.common import Voice
from tests.support import PUBLIC_BASE_URL, call_sid, parse_twiml
from tests.twiml_schema import assert_valid

EN = prompts.load("en")
JANE_IDENTIFY = "If you are Jane, press 1. If Jane is not available, press 2."
GREETING = "Hello. This is Riverside Family Clinic calling."


def place(app, demo):
    with app.app_context():
        return place_touch_call(demo.touch_id)


def answer(twilio, demo):
    response = twilio.post(f"/twilio/voice/outbound/{demo.touch_id}",
                           {"CallSid": call_sid(), "To": demo.patient_phone, "CallStatus": "in-progress"})
    assert response.status_code == 200
    assert_valid(response.data)
    return parse_twiml(response.data)


def audio_url(app, voice, text):
    return f"{PUBLIC_BASE_URL}/audio/{app.extensions['ivr'].prompt_audio.key(voice, text)}.wav"


def step_events(sessions):
    with sessions() as session:
        return [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.kind == "step")
                                                  .order_by(CallEvent.id))]


def test_the_job_renders_the_calls_prompts_before_it_dials(app, demo, synthesizer, dialer, sessions,
                                                          monkeypatch):
    from ivr.models import Touch

    seen_at_dial = []
    place_call = dialer.place_call

    def noting(request):
        with sessions() as session:
            seen_at_dial.append((len(synthesizer.requests), session.get(Touch, demo.touch_id).status))
        return place_call(request)

    statuses_while_rendering = set()
    synthesize = synthesizer.synthesize

    def noting_status(voice, text):
        with sessions() as session:
            statuses_while_rendering.add(session.get(Touch, demo.touch_id).status)
        return synthesize(voice, text)

    monkeypatch.setattr(dialer, "place_call", noting)
    monkeypatch.setattr(synthesizer, "synthesize", noting_status)
    place(app, demo)
    # Everything was rendered while the touch was still planned, before it was claimed and dialled.
    assert statuses_while_rendering == {"planned"}
    assert seen_at_dial == [(len(synthesizer.requests), "dialing")] and len(synthesizer.requests) > 20
    voice = Voice("en", "gmw/en-us", 150)
    texts = [text for v, text in synthesizer.requests]
    assert {v for v, _ in synthesizer.requests} == {voice}
    assert GREETING in texts and JANE_IDENTIFY in texts
    assert any(t.startswith("You have an appointment on ") for t in texts)
    # Every prompt of the reminder flow and the common ones, each once; no other flow's.
    assert len(texts) == len(set(texts))
    assert not any(t.startswith("Thank you for calling") for t in texts)
    assert len(dialer.requests) == 1


def test_a_call_that_will_not_ring_renders_nothing(app, demo, synthesizer, dialer, sessions):
    """An opted-out patient's details are not rendered to disk for a call that is never placed."""
    from ivr.models import utcnow

    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.first_name == "Jane").values(opted_out_at=utcnow()))
    assert place(app, demo) is None
    assert synthesizer.requests == [] and dialer.requests == []


def test_webhooks_play_the_rendered_audio_in_place_of_say(app, demo, twilio, sessions):
    place(app, demo)
    verbs = answer(twilio, demo)
    assert [v.name for v in verbs] == ["Gather", "Redirect"]
    voice = Voice("en", "gmw/en-us", 150)
    assert [(c.name, c.text, c.attrs) for c in verbs[0].children] == [
        ("Play", audio_url(app, voice, GREETING), {}), ("Play", audio_url(app, voice, JANE_IDENTIFY), {})]
    assert "carrier_voice" not in step_events(sessions)[0]


def test_the_carrier_fetches_telephone_audio_and_personal_audio_is_not_cached_publicly(app, demo, client):
    place(app, demo)
    voice = Voice("en", "gmw/en-us", 150)
    for text, cache_control in [(GREETING, "public, max-age=604800, immutable"),
                                (JANE_IDENTIFY, "private, max-age=3600")]:
        response = client.get(audio_url(app, voice, text).removeprefix(PUBLIC_BASE_URL))
        assert response.status_code == 200 and response.mimetype == "audio/wav"
        assert response.headers["Cache-Control"] == cache_control
        info = soundfile.info(io.BytesIO(response.data))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "ULAW")


@pytest.mark.parametrize("path", ["/audio/" + "0" * 64 + ".wav", "/audio/nothing.wav",
                                  "/audio/..%2Fdevelopment-secrets.json.wav"])
def test_audio_that_was_never_rendered_is_not_found(client, path):
    assert client.get(path).status_code == 404


def test_a_patients_own_speaking_rate_is_used_for_every_prompt(app, demo, synthesizer, twilio, sessions):
    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.first_name == "Jane").values(speech_rate=120))
    place(app, demo)
    assert {v.rate for v, _ in synthesizer.requests} == {120}
    verbs = answer(twilio, demo)
    assert verbs[0].children[1].text == audio_url(app, Voice("en", "gmw/en-us", 120), JANE_IDENTIFY)


def test_a_prompt_that_cannot_be_rendered_is_said_by_the_carrier_and_the_call_still_goes(
        app, demo, synthesizer, dialer, twilio, sessions):
    synthesizer.fail_on = "If you are Jane"
    place(app, demo)
    assert len(dialer.requests) == 1
    verbs = answer(twilio, demo)
    assert [(c.name, c.text) for c in verbs[0].children] == [
        ("Play", audio_url(app, Voice("en", "gmw/en-us", 150), GREETING)), ("Say", JANE_IDENTIFY)]
    assert step_events(sessions)[0]["carrier_voice"] == ["reminder.identify"]


def test_without_rendered_audio_every_prompt_is_said(demo, twilio, sessions, synthesizer):
    verbs = answer(twilio, demo)
    assert synthesizer.requests == []  # a webhook never synthesises
    assert [(c.name, c.text, c.attrs.get("language")) for c in verbs[0].children] == [
        ("Say", GREETING, "en-US"), ("Say", JANE_IDENTIFY, "en-US")]
    assert step_events(sessions)[0]["carrier_voice"] == ["reminder.greeting", "reminder.identify"]


def test_a_spanish_patient_gets_spanish_audio(app, sessions, synthesizer, twilio):
    from tests.support import seed_demo_touch

    demo = seed_demo_touch(sessions)
    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.first_name == "Jane").values(language="es"))
    place(app, demo)
    voice = Voice("es", "roa/es-419", 150)
    assert {v for v, _ in synthesizer.requests} == {voice}
    verbs = answer(twilio, demo)
    assert [c.text for c in verbs[0].children] == [
        audio_url(app, voice, "Hola. Le llama Riverside Family Clinic."),
        audio_url(app, voice, "Si usted es Jane, oprima 1. Si Jane no está disponible, oprima 2.")]


def test_prompts_render_makes_every_shared_prompt_once_and_nothing_personal(app, runner, demo, synthesizer):
    result = runner.invoke(args=["prompts", "render"])
    assert result.exit_code == 0, result.output
    languages = prompts.available_languages()
    # Spoken prompts only: text messages (sms.*) are never rendered to audio, nor the phrases
    # values are built from (phrases.*), nor prompts whose values change from call to call
    # (about a patient, when a closed clinic opens, a queued caller's place and wait).
    shared = {lang: [k for k in prompts.load(lang).texts
                     if not prompts.load(lang).placeholders(k) & {"first_name", "date", "time", "location",
                                                                  "provider", "medication", "medication_1", "medication_2",
                                                                  "medication_3", "opens", "ahead",
                                                                  "wait_minutes"}
                     and not k.startswith(("sms.", "phrases."))]
              for lang in languages}
    texts = [text for _, text in synthesizer.requests]
    assert len(texts) == len(set(texts)) == sum(len(keys) for keys in shared.values())
    assert not any("Jane" in t or "Doctor" in t for t in texts)
    assert {v.language for v, _ in synthesizer.requests} == set(languages)
    assert f"{len(texts)} rendered" in result.output and "0 already cached, 0 failed" in result.output
    again = runner.invoke(args=["prompts", "render", "--language", "es"])
    assert again.exit_code == 0 and "0 rendered" in again.output
    assert f"{len(shared['es'])} already cached" in again.output


def test_prompts_render_adds_rates_and_refuses_unknown_languages_and_clinics(runner, demo, synthesizer):
    result = runner.invoke(args=["prompts", "render", "--language", "fr", "--rate", "120"])
    assert result.exit_code == 0, result.output
    assert {v.rate for v, _ in synthesizer.requests} == {120, 150}
    assert runner.invoke(args=["prompts", "render", "--language", "xx"]).output.startswith(
        "Error: no catalogue for: xx")
    assert "no clinic with id 99" in runner.invoke(args=["prompts", "render", "--clinic", "99"]).output


def test_a_slow_synthesiser_costs_a_call_its_local_voice_not_its_turn(tmp_path):
    """Past the render budget the remaining prompts are left to <Say>, so the call still goes."""
    from ivr.prompt_audio import render_prompts
    from speech.audio_cache import PromptAudioCache
    from speech.synthesis import RecordingSynthesizer

    now = [0.0]

    class Slow(RecordingSynthesizer):
        def synthesize(self, voice, text):
            now[0] += 4.0  # each render takes four seconds of the clock below
            return super().synthesize(voice, text)

    keys = [k for k in EN.texts if k.startswith("common.")]
    report = render_prompts(Slow(), PromptAudioCache(tmp_path, "k"), EN, {"clinic_phone": "5 5 5"},
                            Voice("en", "gmw/en-us", 150), keys, budget_seconds=10, clock=lambda: now[0])
    assert (report.made, report.failed) == (3, len(keys) - 3)  # at 0, 4 and 8 s; not at 12


def test_an_administrator_sets_a_patients_rate_and_language(runner, demo, sessions, synthesizer, app):
    from ivr.models import Appointment

    with sessions() as session:
        patient_id = session.get(Appointment, demo.appointment_id).patient_id
    result = runner.invoke(args=["patients", "speech", str(patient_id)])
    assert result.output == f"patient {patient_id}: language en, speech rate the en default, 150 words per minute\n"
    result = runner.invoke(args=["patients", "speech", str(patient_id), "--rate", "125", "--language", "fr"])
    assert result.output == f"patient {patient_id}: language fr, speech rate 125 words per minute\n"
    place(app, demo)
    assert {(v.language, v.name, v.rate) for v, _ in synthesizer.requests} == {("fr", "roa/fr", 125)}
    for bad, message in [(["--rate", "fast"], "--rate must be a whole number"), (["--rate", "900"], "from 80 to 400"),
                         (["--language", "xx"], "no catalogue for 'xx'")]:
        result = runner.invoke(args=["patients", "speech", str(patient_id), *bad])
        assert result.exit_code == 1 and message in result.output
    assert runner.invoke(args=["patients", "speech", "999"]).output == "Error: no patient with id 999\n"
    assert "speech rate the fr default, 150" in runner.invoke(
        args=["patients", "speech", str(patient_id), "--rate", "default"]).output


def test_prompts_rendered_ahead_are_the_ones_calls_play(runner, demo, twilio, app, sessions):
    """`ivr prompts render` fills in the clinic's values exactly as a call does: its greeting is
    played; the identity question names the patient, so only the call's own job renders it."""
    assert runner.invoke(args=["prompts", "render", "--language", "en"]).exit_code == 0
    verbs = answer(twilio, demo)
    assert [(c.name, c.text) for c in verbs[0].children] == [
        ("Play", audio_url(app, Voice("en", "gmw/en-us", 150), GREETING)), ("Say", JANE_IDENTIFY)]
    assert step_events(sessions)[0]["carrier_voice"] == ["reminder.identify"]
