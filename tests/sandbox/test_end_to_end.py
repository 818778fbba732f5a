"""The reminder call across the real stack: signed HTTP webhooks, Redis, an RQ worker, the
database, and the sandbox carrier playing a scripted patient."""

import pytest
from sqlalchemy import select

from ivr.models import Call, CallEvent
from ivr.sandbox import calling, script as scripts
from tests.support import seed_demo_touch

GREETING = ["Hello. This is Riverside Family Clinic calling.",
            "If you are Jane, press 1. If Jane is not available, press 2."]
MENU = ("To confirm, press 1. To cancel, press 2. To ask for a new time, press 3. "
        "To hear this again, press 9.")
CONFIRMED = "Thank you. Your appointment is confirmed. We look forward to seeing you. Goodbye."
NO_RESPONSE = "We did not get an answer. Please call us at 2 1 2, 5 5 5, 0 1 0 0. Goodbye."


@pytest.fixture
def live(sandbox_app_factory):
    """The app on a real local port with the sandbox carrier; yields (app, demo rows)."""
    with calling.serve(sandbox_app_factory) as (app, _base):
        yield app, seed_demo_touch(app.extensions["ivr"].sessions)


def place(live, **script):
    app, demo = live
    return calling.place_reminder_call(app, demo.appointment_id, scripts.parse(script),
                                       run_worker=True, timeout=30)


def said(transcript):
    return [[calling.heard(p) for p in turn.get("prompts", [])] for turn in transcript["turns"]]


def replies(transcript):
    return [turn.get("reply") for turn in transcript["turns"]]


@pytest.mark.parametrize("keys,appointment,outcome,last", [
    (["1", "1"], "confirmed", "confirmed", CONFIRMED),
    (["1", "2", "1"], "cancelled", "cancelled",
     "Your appointment is cancelled. To book a new one, please call us at 2 1 2, 5 5 5, 0 1 0 0. Goodbye."),
    (["1", "3"], "reschedule_requested", "reschedule_requested",
     "Thank you. We have noted that you want a new time. Someone from our office will call you "
     "within one business day. Until then, your appointment stays booked. Goodbye."),
    (["1", "9", "1"], "confirmed", "confirmed", CONFIRMED),
    (["silence", "silence", "silence"], "booked", "no_response", NO_RESPONSE),
    (["1", "7", "0", "*"], "booked", "no_response", NO_RESPONSE),
    (["2"], "booked", "wrong_person", "Thank you. We will try again another time. Goodbye."),
])
def test_every_answer_path(live, keys, appointment, outcome, last):
    result = place(live, replies=keys)
    call = result.transcript
    assert call["status"] == "completed" and call["answered_by"] == "human"
    assert said(call)[0] == GREETING
    assert said(call)[-1] == [last]
    assert [r["value"] if r["kind"] == "keys" else r["kind"] for r in replies(call)[:-1]] == keys
    assert result.outcome == {**result.outcome, "appointment_status": appointment,
                              "call_outcome": outcome, "call_status": "completed",
                              "touch_status": "completed"}


def test_repeat_plays_the_details_again(live):
    call = place(live, replies=["1", "9", "1"]).transcript
    details = said(call)[1]
    assert said(call)[2] == details and details[1] == MENU
    assert details[0].endswith("at the Main Street office, with Doctor Amara Patel.")


def test_silence_falls_through_to_the_redirect_and_reasks(live):
    call = place(live, replies=["silence", "1", "1"]).transcript
    assert said(call)[1] == ["Sorry, I did not hear anything.", GREETING[1]]
    # The Redirect after the unanswered question: the same turn, so the repeat is not stale.
    assert call["turns"][1]["url"].endswith("/twilio/voice/step?turn=1")
    assert call["turns"][2]["url"].endswith("/twilio/voice/step?turn=2")


def test_hang_up_mid_call_leaves_the_appointment_booked(live):
    result = place(live, replies=["1", "hangup"])
    assert len(result.transcript["turns"]) == 2
    assert result.outcome["appointment_status"] == "booked"
    assert (result.outcome["call_status"], result.outcome["call_outcome"]) == ("completed", "hung_up")


@pytest.mark.parametrize("answer", ["busy", "no-answer", "failed"])
def test_unanswered_calls_are_recorded_as_unreached(live, answer):
    result = place(live, answer=answer)
    assert result.transcript["turns"] == [] and result.transcript["status"] == answer
    assert result.outcome == {**result.outcome, "call_status": answer, "call_outcome": "unreached",
                              "touch_status": "unreached", "appointment_status": "booked"}


def test_answering_machine_gets_the_voicemail_without_details(live):
    result = place(live, answer="machine_end_beep", replies=["1"])
    assert said(result.transcript) == [["Hello. This is Riverside Family Clinic calling with a message. "
                                        "Please call us back at 2 1 2, 5 5 5, 0 1 0 0. Thank you."]]
    assert result.outcome["answered_by"] == "machine_end_beep"
    assert (result.outcome["call_outcome"], result.outcome["appointment_status"]) == ("voicemail", "booked")


@pytest.mark.parametrize("duplicate,reorder", [(True, False), (False, True), (True, True)])
def test_duplicated_and_reordered_status_callbacks_end_completed(live, duplicate, reorder):
    app, _ = live
    result = place(live, replies=["1", "1"], callbacks={"duplicate": duplicate, "reorder": reorder})
    sent = [c["status"] for c in result.transcript["callbacks"]]
    expected = ["initiated", "ringing", "in-progress", "completed"]
    if duplicate:
        expected = [s for s in expected for _ in range(2)]
    if reorder:
        expected = expected[::-1]
    assert sent == expected
    assert {c["answer"] for c in result.transcript["callbacks"]} == {"204"}
    assert result.outcome["call_status"] == "completed"
    assert result.outcome["call_outcome"] == "confirmed"
    with app.extensions["ivr"].sessions() as session:
        applied = [e.detail["to"] for e in session.scalars(
            select(CallEvent).join(Call).where(Call.call_sid == result.outcome["call_sid"],
                                               CallEvent.kind == "status").order_by(CallEvent.id))]
    assert applied == (["completed"] if reorder else ["initiated", "ringing", "in-progress", "completed"])


def test_each_test_call_is_a_touch_of_its_own(live):
    first, second = place(live, replies=["1", "9", "9"]), place(live, replies=["1", "1"])
    assert first.outcome["touch_id"] != second.outcome["touch_id"]
    assert first.outcome["call_sid"] != second.outcome["call_sid"]
    assert second.outcome["appointment_status"] == "confirmed"


def test_a_spanish_speaking_patient_hears_spanish_prompts(live):
    from ivr.models import Appointment, Patient

    app, _ = live
    with app.extensions["ivr"].sessions() as session:
        maria = session.scalars(select(Appointment.id).join(Appointment.patient)
                                .where(Patient.first_name == "Maria")).one()
    result = calling.place_reminder_call(app, maria, scripts.from_keys("1,1"), run_worker=True, timeout=30)
    heard = said(result.transcript)
    assert heard[0] == ["Hola. Le llama Riverside Family Clinic.",
                        "Si usted es Maria, oprima 1. Si Maria no está disponible, oprima 2."]
    assert heard[-1] == ["Gracias. Su cita está confirmada. Le esperamos. Adiós."]
    # Every prompt played from audio rendered locally in the Spanish voice; none was left to <Say>.
    prompts = [p for t in result.transcript["turns"] for p in t.get("prompts", [])]
    assert {(p["rendered"]["language"], p["rendered"]["voice"]) for p in prompts} == {("es", "roa/es-419")}
    assert all(p["seconds"] > 1 for p in prompts)
    assert result.outcome["appointment_status"] == "confirmed"


def test_a_los_angeles_patient_of_a_new_york_clinic_hears_the_new_york_time(live):
    from ivr.models import Patient

    app, demo = live
    with app.extensions["ivr"].sessions.begin() as session:
        session.scalars(select(Patient).where(Patient.first_name == "Jane")).one().timezone = "America/Los_Angeles"
    result = place(live, replies=["1", "1"])
    details = said(result.transcript)[1][0]
    assert " at 9:30 AM Eastern Time, at the Main Street office, with Doctor Amara Patel." in details
    assert result.outcome["appointment_status"] == "confirmed"
