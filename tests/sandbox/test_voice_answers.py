"""Voice answers across the real stack: real recordings of people saying yes, no, stop and digits,
played by the sandbox into <Record>, fetched by the server with the account's credentials,
recognised locally (Whisper), and turned into the same outcomes as keys; tones and hum are not."""

import numpy as np
import pytest
import soundfile
from sqlalchemy import select, update

from ivr.models import Clinic, Call, CallEvent
from ivr.sandbox import calling, script as scripts
from speech import load_wav, recognizer_for
from speech.intents import intent_of, phrases_for
from tests.support import seed_demo_touch

# The intents each question listens for (its keys' digits and stop included), as the flow asks.
IDENTIFY = ["yes", "no", "stop", "1", "2"]
MENU = ["yes", "cancel", "reschedule", "repeat", "stop", "1", "2", "3", "9"]


def english_engine(live):
    """The engine the live server recognises English with (its settings say where models are)."""
    app, _base = live
    return recognizer_for("en", app.extensions["ivr"].settings.speech_models)


def clip_heard_as(live, clips, label, intent, *questions):
    """A real recording of `label` that the engine hears as `intent` at each of the questions
    (each question's grammar is its intents' phrases, as the server builds it)."""
    engine = english_engine(live)
    for path in sorted((clips / label).glob("*.wav")):
        audio = load_wav(path).telephone()
        if all(intent_of("en", engine.recognize(audio, phrases_for("en", q))) == intent for q in questions):
            return path
    pytest.fail(f"no {label} clip is heard as {intent}")


@pytest.fixture
def live(sandbox_app_factory):
    with calling.serve(sandbox_app_factory) as (app, _base):
        sessions = app.extensions["ivr"].sessions
        demo = seed_demo_touch(sessions)
        with sessions.begin() as session:
            session.execute(update(Clinic).values(voice_answers=True))
        yield app, demo


def place(live, replies, **script):
    app, demo = live
    return calling.place_reminder_call(app, demo.appointment_id,
                                       scripts.parse({"replies": replies, **script}),
                                       run_worker=True, timeout=30)


def test_a_spoken_yes_twice_confirms_the_appointment(live, clips):
    yes = str(clip_heard_as(live, clips, "yes", "yes", IDENTIFY, MENU))
    result = place(live, [{"audio": yes}, {"audio": yes}])
    assert result.outcome["appointment_status"] == "confirmed"
    assert result.outcome["call_outcome"] == "confirmed"
    said = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert said[0][1] == "If you are Jane, say yes or press 1. If Jane is not available, say no or press 2."
    assert said[-1] == ["Thank you. Your appointment is confirmed. We look forward to seeing you. Goodbye."]
    heard = result.outcome["speech"]
    assert [h["intent"] for h in heard] == ["yes", "yes"]
    assert all(h["engine"] == "whisper" and h["recording_sid"].startswith("RE") for h in heard)


def test_a_spoken_no_at_the_identity_question_ends_politely(live, clips):
    no = str(clip_heard_as(live, clips, "no", "no", IDENTIFY))
    result = place(live, [{"audio": no}])
    assert (result.outcome["call_outcome"], result.outcome["appointment_status"]) == ("wrong_person", "booked")


def test_keys_still_answer_when_the_question_records(live):
    result = place(live, ["1", "3"])
    assert result.outcome["appointment_status"] == "reschedule_requested"
    assert result.outcome["speech"] == []


def test_silence_in_voice_mode_reasks_then_closes(live):
    result = place(live, ["silence", "silence", "silence"])
    said = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert said[1] == ["Sorry, I did not hear anything.",
                       "If you are Jane, say yes or press 1. If Jane is not available, say no or press 2."]
    assert result.outcome["call_outcome"] == "no_response"


def test_noise_is_not_taken_for_an_answer(live, clips):
    """A near-silent recording is heard as nothing, so the caller is asked again."""
    engine = english_engine(live)
    quiet = next(str(p) for p in sorted((clips / "_silence_").glob("*.wav"))
                 if engine.recognize(load_wav(p).telephone(), phrases_for("en", IDENTIFY)).text == "")
    result = place(live, [{"audio": quiet}, "1", "1"])
    said = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert said[1][0] == "Sorry, I did not understand."
    assert result.outcome["appointment_status"] == "confirmed"
    app, _ = live
    with app.extensions["ivr"].sessions() as session:
        detail = session.scalars(select(CallEvent.detail).join(Call).where(CallEvent.kind == "step")
                                 .order_by(CallEvent.id)).all()[1]
    assert detail["input"]["speech"]["text"] == "" and detail["decision"] == "not_understood"


def test_spoken_digits_answer_as_their_keys(live, clips):
    """"One" at the identity question is pressing 1, "three" at the menu is pressing 3."""
    menu = ["yes", "cancel", "reschedule", "repeat", "stop", "1", "2", "3", "9"]
    one = str(clip_heard_as(live, clips, "one", "1", ["yes", "no", "stop", "1", "2"]))
    three = str(clip_heard_as(live, clips, "three", "3", menu))
    result = place(live, [{"audio": one}, {"audio": three}])
    assert [h["intent"] for h in result.outcome["speech"]] == ["1", "3"]
    assert result.outcome["appointment_status"] == "reschedule_requested"


@pytest.mark.parametrize("sound", ["dtmf", "hum"])
def test_a_keypad_tone_or_mains_hum_is_not_taken_for_an_answer(live, tmp_path, sound):
    """A key's tone recorded as audio (a phone that sends in-band DTMF) never reaches the decoder
    (the voice-activity gate), nor is a line's 60 Hz hum taken for an answer: the caller is asked
    again, then answers with a real key."""
    t = np.arange(2 * 8000) / 8000
    wave = (0.25 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t)) * ((t % 0.5) < 0.25)
            if sound == "dtmf" else sum(0.3 / k * np.sin(2 * np.pi * 60 * k * t) for k in (1, 2, 3, 5)))
    path = tmp_path / f"{sound}.wav"
    soundfile.write(path, wave.astype(np.float32), 8000, subtype="ULAW")
    result = place(live, [{"audio": str(path)}, "1", "1"])
    said = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert said[1][0] == "Sorry, I did not understand."
    speech = result.outcome["speech"][0]
    assert (speech["text"], speech["intent"], speech["engine"]) == ("", None, "whisper")
    if sound == "dtmf":
        assert (speech["confidence"], "rejected" in speech) == (0.0, False)  # gated: nothing decoded
    assert result.outcome["appointment_status"] == "confirmed"


def test_a_spoken_stop_is_read_back_and_a_yes_opts_the_patient_out(live, clips):
    from ivr.models import Patient
    from outbound.jobs import place_touch_call

    stop = str(clip_heard_as(live, clips, "stop", "stop", [*IDENTIFY, "stop", "1", "2"]))
    yes = str(clip_heard_as(live, clips, "yes", "yes", ["yes", "stop", "no", "1", "2"]))
    result = place(live, [{"audio": stop}, {"audio": yes}])
    said = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert said[1] == ["You asked us to stop calling this number. To stop, say yes or press 1. "
                       "To keep getting calls, say no or press 2."]
    assert said[-1] == ["We will not call this number again. Goodbye."]
    assert [h["intent"] for h in result.outcome["speech"]] == ["stop", "yes"]
    assert result.outcome["call_outcome"] == "opted_out"
    app, demo = live
    with app.extensions["ivr"].sessions() as session:
        patient = session.scalars(select(Patient).where(Patient.phone == demo.patient_phone)).one()
        assert patient.opted_out_at is not None and patient.opted_out_source == "voice"
    # Honoured at once: the next planned call to this patient is not placed.
    with app.app_context():
        assert place_touch_call(demo.touch_id) is None


def test_a_spoken_stop_then_no_keeps_the_calls_coming(live, clips):
    from ivr.models import Patient

    stop = str(clip_heard_as(live, clips, "stop", "stop", [*IDENTIFY, "stop", "1", "2"]))
    result = place(live, [{"audio": stop}, "2", "1", "1"])
    assert result.outcome["appointment_status"] == "confirmed"
    app, demo = live
    with app.extensions["ivr"].sessions() as session:
        assert session.scalars(select(Patient.opted_out_at).where(Patient.phone == demo.patient_phone)).one() is None


def test_a_korean_patient_hears_korean_and_answers_in_korean(live, korean):
    """Korean end to end: Korean prompts in the local Korean voice, Korean answers (spoken by
    espeak-ng) recognised by Whisper base, the appointment confirmed."""
    from ivr.models import Patient

    app, demo = live
    with app.extensions["ivr"].sessions.begin() as session:
        session.execute(update(Patient).where(Patient.phone == demo.patient_phone).values(language="ko"))
    yes = str(korean("네"))
    result = place(live, [{"audio": yes}, {"audio": yes}])
    prompts = [p for t in result.transcript["turns"] for p in t.get("prompts", [])]
    assert {(p["rendered"]["language"], p["rendered"]["voice"]) for p in prompts} == {("ko", "ko")}
    assert calling.heard(prompts[0]) == "안녕하세요. Riverside Family Clinic입니다."
    assert [(h["engine"], h["text"], h["intent"]) for h in result.outcome["speech"]] == [
        ("whisper", "네", "yes"), ("whisper", "네", "yes")]
    assert result.outcome["appointment_status"] == "confirmed"


def test_no_recording_is_left_at_the_carrier_after_a_voice_call(live, clips):
    """The README promises that voices stay on the clinic's machines: each recorded answer (spoken,
    or ended by a key) is fetched once and then deleted at the carrier, and the record says so."""
    from ivr.models import CarrierRecording
    from ivr.telephony import carrier_client

    app, _demo = live
    yes = str(clip_heard_as(live, clips, "yes", "yes", IDENTIFY))
    result = place(live, [{"audio": yes}, "3"])
    assert result.outcome["call_outcome"] == "reschedule_requested"
    client = carrier_client(app.extensions["ivr"].settings)
    assert client.recordings.list() == []
    with app.extensions["ivr"].sessions() as session:
        rows = session.scalars(select(CarrierRecording).order_by(CarrierRecording.id)).all()
        call = session.scalars(select(Call)).one()
    assert len(rows) == 2 and {r.call_id for r in rows} == {call.id}
    assert all(r.deleted_at is not None and r.attempts == 1 and r.last_error is None for r in rows)
    assert [r.sid for r in rows][0] == result.outcome["speech"][0]["recording_sid"]


def test_keys_pressed_at_recording_questions_leave_no_recording_at_the_carrier(live):
    """Each question records until a key ends it: those recordings go too (no clips needed)."""
    from ivr.telephony import carrier_client

    app, _demo = live
    result = place(live, ["1", "1"])
    assert result.outcome["call_outcome"] == "confirmed"
    assert carrier_client(app.extensions["ivr"].settings).recordings.list() == []
