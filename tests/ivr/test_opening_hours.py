"""Opening hours: when the line is staffed (weekdays, public holidays of the clinic's country and
state, its own closures), and what a caller hears and can do outside them."""

import datetime as dt
import io
import os
import stat
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from ivr.inbound.hours import Hours
from ivr.models import CarrierRecording, Clinic, ClinicClosure, OpeningHours, Task
from tests.support import call_sid, parse_twiml, spoken
from tests.twiml_schema import assert_valid

NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = {d: ((dt.time(9), dt.time(17)),) for d in range(5)}
STEP = "/twilio/voice/step"


def at(*args):
    return dt.datetime(*args, tzinfo=NEW_YORK)


def hours(week=WEEKDAYS_9_TO_5, closed=(), country="US", subdivision=None):
    return Hours("America/New_York", week, frozenset(closed), country, subdivision)


@pytest.mark.parametrize("moment,is_open", [
    (at(2026, 12, 1, 9, 0), True),       # a Tuesday, at opening
    (at(2026, 12, 1, 16, 59), True),
    (at(2026, 12, 1, 17, 0), False),     # closing time is closed
    (at(2026, 12, 5, 11, 0), False),     # a Saturday
    (at(2026, 12, 25, 11, 0), False),    # Christmas Day, a Friday
])
def test_open_on_weekdays_in_hours_and_not_on_public_holidays(moment, is_open):
    assert hours().is_open(moment) is is_open


def test_a_state_holiday_closes_only_clinics_in_that_state():
    lincoln = at(2027, 2, 12, 11, 0)     # Lincoln's Birthday: New York, a Friday
    assert hours(subdivision="NY").is_open(lincoln) is False
    assert hours(subdivision="CA").is_open(lincoln) is True


def test_the_next_opening_skips_the_weekend_holidays_and_the_clinics_own_closures():
    friday_evening = at(2026, 12, 24, 18, 0)
    # Christmas (Friday) is a holiday, then the weekend, then Monday the clinic closes itself.
    assert hours(closed={dt.date(2026, 12, 28)}).next_opening(friday_evening) == at(2026, 12, 29, 9, 0)


def test_a_day_with_a_lunch_break_opens_again_after_it():
    split = {1: ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17)))}
    assert hours(week=split).is_open(at(2026, 12, 1, 12, 30)) is False
    assert hours(week=split).next_opening(at(2026, 12, 1, 12, 30)) == at(2026, 12, 1, 13, 0)


def test_a_clinic_closed_for_weeks_has_no_next_opening():
    assert hours(week={}).next_opening(at(2026, 12, 1, 12, 0)) is None


# Through the webhooks -------------------------------------------------------------------------

def wav(seconds=2.0):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(8000 * seconds), dtype=np.float32), 8000, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def closed_today(sessions, demo):
    """The demo clinic is staffed on weekdays 09:00-17:00 but closed today; one language only."""
    today = dt.datetime.now(NEW_YORK).date()
    with sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        for weekday in range(5):
            session.add(OpeningHours(clinic_id=clinic.id, weekday=weekday, opens=dt.time(9), closes=dt.time(17)))
        session.add(ClinicClosure(clinic_id=clinic.id, day=today))
    return today


def ring(twilio, caller="+12125550111"):
    response = twilio.post("/twilio/voice/inbound", {"CallSid": call_sid(7), "From": caller,
                                                    "To": "+12125550100", "Direction": "inbound"})
    assert response.status_code == 200
    return parse_twiml(response.data)


def test_after_hours_the_caller_hears_when_the_clinic_opens_and_can_leave_a_message(
        app, twilio, sessions, closed_today, recordings, runner, tmp_path):
    ring(twilio)
    response = twilio.post(twilio.next_url(call_sid(7), "silence", STEP), {"CallSid": call_sid(7)})
    assert_valid(response.data)
    verbs = parse_twiml(response.data)
    said = spoken(verbs)
    assert said[0].startswith("Our office is closed now. We open again ") and said[0].endswith(" at 9:00 AM.")
    assert said[1] == ("To leave a message for our staff, speak after the tone. Press pound when you are done.")
    record = [v for v in verbs if v.name == "Record"][0]
    assert (record.attrs["playBeep"], record.attrs["finishOnKey"], record.attrs["maxLength"]) == ("true", "#", "120")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "1" * 32
    recordings.audio[url] = wav(3.0)
    done = parse_twiml(twilio.post(twilio.next_url(call_sid(7), "answer", STEP),
                                   {"CallSid": call_sid(7), "RecordingUrl": url, "RecordingSid": "RE" + "1" * 32,
                                    "RecordingDuration": "3", "Digits": "hangup"}).data)
    assert spoken(done) == ["Thank you. We have your message. Someone from our office will call you back "
                            "within one business day. Goodbye."]
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert (task.kind, task.phone) == ("voicemail_review", "+12125550111")
    folder = app.extensions["ivr"].settings.voicemail_dir
    kept = os.path.join(folder, f"{task.voicemail}.wav")
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    out = tmp_path / "message.wav"
    result = runner.invoke(args=["tasks", "voicemail", str(task.id), "--out", str(out)])
    assert result.exit_code == 0 and out.read_bytes() == wav(3.0)
    again = runner.invoke(args=["tasks", "voicemail", str(task.id), "--out", str(out)])
    assert again.exit_code == 1 and "exists; choose a new file name" in again.output
    assert runner.invoke(args=["tasks", "done", str(task.id), "--by", "nurse kim"]).exit_code == 0
    assert not os.path.exists(kept)          # the message goes once nobody has to act on it
    # The carrier's copy goes, as every recording's does: it was noted for deletion.
    with sessions() as session:
        assert session.scalars(select(CarrierRecording.sid)).all() == ["RE" + "1" * 32]


def test_after_hours_zero_at_the_welcome_leads_to_the_message_not_to_staff(twilio, sessions, closed_today):
    ring(twilio)
    said = spoken(parse_twiml(twilio.post(twilio.next_url(call_sid(7), "answer", STEP),
                                          {"CallSid": call_sid(7), "Digits": "0"}).data))
    assert said[0].startswith("Our office is closed now.")


def test_after_hours_a_message_from_a_number_we_cannot_ring_promises_no_call(
        twilio, sessions, closed_today, recordings):
    ring(twilio, caller="+33142685300")
    twilio.post(twilio.next_url(call_sid(7), "silence", STEP), {"CallSid": call_sid(7)})
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "2" * 32
    recordings.audio[url] = wav(2.0)
    said = spoken(parse_twiml(twilio.post(twilio.next_url(call_sid(7), "answer", STEP),
                                          {"CallSid": call_sid(7), "RecordingUrl": url}).data))
    assert said == ["Thank you. We have your message. Our staff will listen to it on the next business day. "
                    "Goodbye."]


def test_after_hours_without_a_message_a_call_back_is_promised_with_its_task(twilio, sessions, closed_today):
    ring(twilio)
    twilio.post(twilio.next_url(call_sid(7), "silence", STEP), {"CallSid": call_sid(7)})
    said = spoken(parse_twiml(twilio.post(twilio.next_url(call_sid(7), "silence", STEP),
                                          {"CallSid": call_sid(7)}).data))
    assert said == ["We did not get a message. Someone from our office will call you back within one business "
                    "day. Goodbye."]
    with sessions() as session:
        assert [t.kind for t in session.scalars(select(Task))] == ["call_back"]


def test_within_hours_callers_are_asked_who_they_are_as_usual(twilio, sessions, demo):
    with sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        for weekday in range(7):
            session.add(OpeningHours(clinic_id=clinic.id, weekday=weekday, opens=dt.time(0), closes=dt.time(23, 59)))
    ring(twilio)
    said = spoken(parse_twiml(twilio.post(twilio.next_url(call_sid(7), "silence", STEP), {"CallSid": call_sid(7)}).data))
    assert said[0].startswith("Please enter your date of birth.")


def test_the_hours_commands(runner, sessions, demo):
    result = runner.invoke(args=["clinics", "hours", "1", "--set", "mon-fri 08:00-12:00", "--set",
                                 "mon-fri 13:00-17:00", "--set", "sat 09:00-11:30"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "clinic 1 (America/New_York): mon 08:00-12:00, mon 13:00-17:00, tue 08:00-12:00, tue 13:00-17:00, "
        "wed 08:00-12:00, wed 13:00-17:00, thu 08:00-12:00, thu 13:00-17:00, fri 08:00-12:00, fri 13:00-17:00, "
        "sat 09:00-11:30")
    bad = runner.invoke(args=["clinics", "hours", "1", "--set", "weekdays 8-5"])
    assert bad.exit_code == 2 and "expected like 'mon-fri 08:00-17:00'" in bad.output
    backwards = runner.invoke(args=["clinics", "hours", "1", "--set", "mon 17:00-08:00"])
    assert backwards.exit_code == 2 and "opening must come before closing" in backwards.output
    around = runner.invoke(args=["clinics", "hours", "1", "--set", "mon-sun 00:00-24:00"])
    assert around.output.strip().endswith("sun 00:00-24:00")
    assert Hours("America/New_York", {d: ((dt.time(0), dt.time.max),) for d in range(7)}, frozenset(), None,
                 None).is_open(at(2026, 12, 1, 23, 59, 59))
    assert runner.invoke(args=["clinics", "hours", "1", "--always-open"]).output.strip() == (
        "clinic 1: always open (no hours set)")
    assert runner.invoke(args=["clinics", "closed", "1", "2026-12-24"]).output.strip() == (
        "clinic 1: closed on 2026-12-24")
    holidays = runner.invoke(args=["clinics", "holidays", "1", "us", "ny"])
    assert holidays.output.strip() == "clinic 1: closed on the public holidays of US-NY"
    unknown = runner.invoke(args=["clinics", "holidays", "1", "XX"])
    assert unknown.exit_code == 2 and "'XX' is not a country the holidays package knows" in unknown.output
    with sessions() as session:
        clinic = session.scalars(select(Clinic)).one()
        assert (clinic.holiday_country, clinic.holiday_subdivision) == ("US", "NY")
        assert session.scalars(select(ClinicClosure.day)).all() == [dt.date(2026, 12, 24)]


def test_a_task_without_a_message_says_so_in_one_line(runner, demo, tmp_path):
    result = runner.invoke(args=["tasks", "voicemail", "999", "--out", str(tmp_path / "x.wav")])
    assert result.exit_code == 1 and result.output.strip() == "Error: task 999 has no message"
