"""The inbound line across the real stack: a sandbox phone calls the clinic over real HTTP, keys
and recordings go through the carrier's protocol, the worker sends what the call's end queues."""

import subprocess

import pytest
from sqlalchemy import select, update

from ivr.models import Appointment, Call, CallEvent, Clinic, Message, Patient, Prescription, Task
from ivr.sandbox import calling, script as scripts

JANE = "+12125550143"
STRANGER = "+12125550111"
CLINIC = "+12125550100"


@pytest.fixture
def live(sandbox_app_factory):
    from ivr import demo

    with calling.serve(sandbox_app_factory) as (app, _base):
        with app.extensions["ivr"].sessions.begin() as session:
            demo.seed(session)
            # These callers' calls ring the staff lines themselves (tests/sandbox/test_caller_queue.py:
            # the queue, the clinic's default).
            session.execute(update(Clinic).values(queue_callers=False))
        yield app


def call_in(app, caller, replies, staff="answers", voice=False):
    if voice:
        with app.extensions["ivr"].sessions.begin() as session:
            session.execute(update(Clinic).values(voice_answers=True))
    return calling.place_inbound_call(app, caller, CLINIC, scripts.parse({"staff": staff, "replies": replies}),
                                      run_worker=True, timeout=60)


def said(result):
    return [[calling.heard(p) for p in turn.get("prompts", [])] for turn in result.transcript["turns"]]


STAFF_CHOICE = "Press 1 to take the call. Press 2 to pass."


def whisper(result):
    """What staff heard before they took the call (pressed 1) or passed it."""
    (dial,) = [t["dial"] for t in result.transcript["turns"] if "dial" in t]
    said = [p["say"] for p in dial["whisper"]]
    assert said[-1] == STAFF_CHOICE
    return said[:-1]


def the_call(app, sid):
    with app.extensions["ivr"].sessions() as session:
        return session.scalars(select(Call).where(Call.call_sid == sid)).one()


def jane_appointment(app):
    with app.extensions["ivr"].sessions() as session:
        return session.scalars(select(Appointment).join(Appointment.patient).where(Patient.phone == JANE)).one()


def spoken_date(tmp_path, words: str) -> str:
    """A date of birth said aloud, as a WAV file (espeak-ng's voice: no recording of a person
    saying a date is at hand)."""
    path = tmp_path / "dob.wav"
    subprocess.run(["espeak-ng", "-v", "gmw/en-us", "-s", "140", "-w", str(path), words], check=True)
    return str(path)


def test_a_patient_confirms_by_keys_then_staff_hear_who_and_why_before_the_caller(live):
    result = call_in(live, JANE, ["silence", "04121950", "1", "1", "0"])
    heard = said(result)
    assert heard[2][0] == "Thank you, Jane."
    assert heard[4][0] == "Thank you. Your appointment is confirmed."
    assert whisper(result) == ["A call from Jane. Their date of birth matched. They asked for a person.",
                               "They confirmed their next appointment."]
    assert jane_appointment(live).status == "confirmed"
    call = the_call(live, result.outcome["call_sid"])
    assert (call.outcome, call.patient_id) == ("transferred", jane_appointment(live).patient_id)
    assert result.transcript["texts"] == []          # a person took the call


def test_a_date_of_birth_said_aloud_identifies_the_caller(live, tmp_path):
    result = call_in(live, JANE, ["silence", {"audio": spoken_date(tmp_path, "April twelfth, nineteen fifty")},
                                  "hangup"], voice=True)
    heard = said(result)
    assert heard[1][0].startswith("Please say your date of birth")
    assert heard[2][0] == "Thank you, Jane."
    with live.extensions["ivr"].sessions() as session:
        events = session.scalars(select(CallEvent).where(CallEvent.kind == "step").order_by(CallEvent.id)).all()
    speech = events[2].detail["input"]["speech"]
    # The date is personal data: the trail keeps that a date was heard, not which.
    assert speech["kind"] == "date" and "value" not in speech and "text" not in speech


@pytest.mark.parametrize("words", ["March fourth, nineteen fifty-two", "December twenty-first, nineteen eighty",
                                   "the fourth of July, nineteen forty-five"])
def test_a_spoken_date_that_is_not_the_patients_is_a_mismatch_never_an_emergency(live, tmp_path, words):
    result = call_in(live, JANE, ["silence", {"audio": spoken_date(tmp_path, words)}, "hangup"], voice=True)
    assert said(result)[2][0] == "Sorry, that date of birth does not match our records."
    assert result.outcome["call_outcome"] != "emergency"


def test_a_wrong_date_twice_reaches_a_person_warned_that_the_caller_is_not_verified(live):
    result = call_in(live, JANE, ["silence", "01011990", "02021990"])
    assert whisper(result) == ["A caller from a patient's number. Their date of birth did not match, or was "
                               "not given. Check who they are before you share details."]
    assert the_call(live, result.outcome["call_sid"]).patient_id is None


def test_a_caller_who_hangs_up_in_the_menu_gets_one_text_with_a_call_back_behind_it(live):
    result = call_in(live, JANE, ["silence", "04121950", "hangup"])
    assert [t["body"] for t in result.transcript["texts"]] == [
        "Riverside Family Clinic: sorry we missed your call. Someone will call you back within one business "
        "day. In an emergency, dial 911."]
    with live.extensions["ivr"].sessions() as session:
        assert [t.kind for t in session.scalars(select(Task))] == ["call_back"]


def test_a_caller_the_menu_served_gets_no_missed_call_text(live):
    result = call_in(live, JANE, ["silence", "04121950", "1", "1", "hangup"])
    assert result.transcript["texts"] == []
    with live.extensions["ivr"].sessions() as session:
        (decision,) = session.scalars(select(CallEvent.detail).where(CallEvent.kind == "text_back")).all()
    assert decision == {"decision": "suppressed", "reason": "the menu served the caller"}


def test_nobody_answering_an_unknown_caller_means_one_promise_one_text_one_task(live):
    result = call_in(live, STRANGER, ["silence", "0"], staff="no-answer")
    assert said(result)[-1] == ["Sorry, no one could take your call. Someone from our office will call you back "
                                "within one business day. Goodbye."]
    assert len(result.transcript["texts"]) == 1
    with live.extensions["ivr"].sessions() as session:
        (task,) = session.scalars(select(Task)).all()
        text = session.scalars(select(Message).where(Message.kind == "text_back")).one()
    assert (task.kind, task.phone, task.patient_id) == ("call_back", STRANGER, None)
    assert text.call_id == task.call_id


def test_a_refill_by_keys_becomes_a_task_for_that_prescription(live):
    result = call_in(live, JANE, ["silence", "04121950", "2", "1", "hangup"])
    assert said(result)[3] == ["Which prescription do you want refilled?", "For metformin, press 1.",
                               "For lisinopril, press 2.", "To hear this again, press 9. To talk to a person, press 0."]
    with live.extensions["ivr"].sessions() as session:
        (task,) = session.scalars(select(Task)).all()
        assert (task.kind, session.get(Prescription, task.prescription_id).medication) == (
            "refill_request", "metformin")
    assert result.transcript["texts"] == []      # served: no missed-call text


def test_after_hours_a_message_becomes_a_task_for_staff_and_the_caller_gets_one_text(live, clips):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.models import ClinicClosure, OpeningHours

    with live.extensions["ivr"].sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        session.add(OpeningHours(clinic_id=clinic.id, weekday=0, opens=dt.time(9), closes=dt.time(17)))
        session.add(ClinicClosure(clinic_id=clinic.id, day=dt.datetime.now(ZoneInfo(clinic.timezone)).date()))
    message = str(sorted((clips / "yes").glob("*.wav"))[0])      # a real voice says "yes" as its message
    result = call_in(live, STRANGER, ["silence", {"audio": message}])
    heard = said(result)
    assert heard[1][0].startswith("Our office is closed now. We open again ")
    assert heard[2] == ["Thank you. We have your message. Someone from our office will call you back within one "
                        "business day. Goodbye."]
    with live.extensions["ivr"].sessions() as session:
        (task,) = session.scalars(select(Task)).all()
        text = session.scalars(select(Message).where(Message.kind == "text_back")).one()
    assert (task.kind, task.phone, task.message_id) == ("voicemail_review", STRANGER, text.id)
    assert len(result.transcript["texts"]) == 1


def test_staff_who_pass_send_the_caller_to_the_next_line_who_takes_it(live):
    from ivr.models import StaffLine

    with live.extensions["ivr"].sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        session.add(StaffLine(clinic_id=clinic.id, position=1, phone="+12125550198"))
    result = call_in(live, JANE, ["silence", "04121950", "3"], staff="passes,answers")
    dials = [t["dial"] for t in result.transcript["turns"] if "dial" in t]
    assert [(d["to"], d["staff_pressed"], d["status"]) for d in dials] == [
        ("+12125550199", "2", "no-answer"), ("+12125550198", "1", "completed")]
    assert said(result)[-2] == ["Please stay on the line. I am trying someone else."]
    assert the_call(live, result.outcome["call_sid"]).outcome == "transferred"
    with live.extensions["ivr"].sessions() as session:
        choices = session.scalars(select(CallEvent.detail).where(CallEvent.kind == "staff").order_by(CallEvent.id))
        assert list(choices) == [{"accepted": False}, {"accepted": True}]


def test_a_caller_on_virtual_hold_is_called_back_exactly_once_when_staff_take_it(live):
    """Nobody takes the call; the caller presses 1 and hangs up; the worker rings staff (twice
    queued, once rung), staff press 1, and the caller's phone is dialled from the clinic's number."""
    import time

    from ivr.models import Escalation
    from ivr.sandbox.carrier import SandboxCarrier
    from outbound.callbacks import enqueue_call_back
    from outbound.queueing import outbound_queue

    services = live.extensions["ivr"]
    store = SandboxCarrier.store_for(services.settings, services.redis)
    store.set_phone("+12125550199", scripts.parse({"replies": ["1"], "staff": "answers"}))
    result = call_in(live, JANE, ["silence", "04121950", "3", "1"], staff="no-answer")
    assert said(result)[-1] == ["Thank you. We will call you back as soon as someone is free. Goodbye."]
    assert result.transcript["texts"] == []               # a call back is planned: no missed-call text
    with services.sessions() as session:
        escalation_id = session.scalars(select(Escalation.id)).one()
    assert enqueue_call_back(outbound_queue(services.redis), escalation_id) is False   # queued already
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        calling._work(live)
        with services.sessions() as session:
            escalation = session.get(Escalation, escalation_id)
            if escalation.callback_status in ("done", "failed"):
                break
        time.sleep(0.2)
    assert (escalation.callback_status, escalation.outcome) == ("done", "call_back")
    staff_calls = [c for c in store.calls() if c["to"] == "+12125550199"]
    assert len(staff_calls) == 1
    with services.sessions() as session:
        assert session.scalars(select(Task)).all() == []
