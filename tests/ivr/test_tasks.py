"""Every promise a call makes is backed by a task or a planned call, made with the decision."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from ivr.models import Clinic, Task, Touch, utcnow
from ivr.tasks import due_at
from tests.support import call_sid

NEW_YORK = "America/New_York"


def call_through(twilio, demo, *keys):
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    for turn, key in enumerate(keys, 1):
        twilio.post(f"/twilio/voice/step?turn={turn}", {"CallSid": call_sid(), "Digits": key})


def tasks(sessions):
    with sessions() as session:
        return session.scalars(select(Task).order_by(Task.id)).all()


def test_asking_for_a_new_time_leaves_an_open_task_due_within_a_business_day(twilio, demo, sessions):
    before = utcnow()
    call_through(twilio, demo, "1", "3")
    (task,) = tasks(sessions)
    assert (task.kind, task.status, task.appointment_id) == ("reschedule_request", "open", demo.appointment_id)
    assert task.patient_id is not None and task.call_id is not None and task.phone is None
    assert due_at(before, NEW_YORK, "+12125550100", 1) <= task.due_at <= due_at(utcnow(), NEW_YORK, "+12125550100", 1)


def test_someone_else_answering_leaves_a_task_or_a_retry_the_next_day(twilio, demo, sessions):
    call_through(twilio, demo, "2")
    assert [t.kind for t in tasks(sessions)] == ["wrong_person"]


def test_a_clinic_that_allows_it_rings_once_more_the_next_day_instead(twilio, demo, sessions):
    with sessions.begin() as session:
        session.execute(update(Clinic).values(retry_wrong_person=True))
    call_through(twilio, demo, "2")
    assert tasks(sessions) == []
    with sessions() as session:
        retry = session.scalars(select(Touch).where(Touch.step == "reminder-retry-1")).one()
    assert retry.status == "planned" and retry.appointment_id == demo.appointment_id
    assert dt.timedelta(hours=23) < retry.due_at - utcnow() <= dt.timedelta(days=1)


def test_a_failed_step_with_no_staff_to_take_the_call_promises_a_call_back_and_means_it(
        twilio, demo, sessions, monkeypatch):
    from tests.support import parse_twiml, spoken

    with sessions.begin() as session:
        session.execute(update(Clinic).values(staff_phone=None))
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    monkeypatch.setattr("call_flows.step", lambda *args, **kwargs: 1 / 0)
    response = twilio.post("/twilio/voice/step?turn=1", {"CallSid": call_sid(), "Digits": "1"})
    assert spoken(parse_twiml(response.data)) == [
        "Sorry, something went wrong on our side. Someone from our office will call you back. Goodbye."]
    assert [(t.kind, t.status) for t in tasks(sessions)] == [("call_back", "open")]


@pytest.mark.parametrize("now,days,due", [
    # Friday 10:00 New York -> Monday 10:00
    (dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.timezone.utc), 1, dt.datetime(2026, 12, 7, 10, 0)),
    # Thursday December 24 -> Monday December 28 (Christmas Friday, then the weekend)
    (dt.datetime(2026, 12, 24, 15, 0, tzinfo=dt.timezone.utc), 1, dt.datetime(2026, 12, 28, 10, 0)),
    (dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.timezone.utc), 0, dt.datetime(2026, 12, 2, 10, 0)),
])
def test_business_days_skip_weekends_and_the_clinics_public_holidays(now, days, due):
    assert due_at(now, NEW_YORK, "+12125550100", days) == due.replace(tzinfo=ZoneInfo(NEW_YORK))


def test_a_clinic_that_names_its_country_and_state_gets_their_holidays_not_its_numbers():
    """A New York number, a clinic in Quebec: Saint-Jean-Baptiste (June 24, 2027, a Thursday) is a
    holiday there and not in New York."""
    wednesday = dt.datetime(2027, 6, 23, 15, 0, tzinfo=dt.timezone.utc)
    assert due_at(wednesday, NEW_YORK, "+12125550100", 1) == dt.datetime(2027, 6, 24, 11, 0, tzinfo=ZoneInfo(NEW_YORK))
    assert due_at(wednesday, NEW_YORK, "+12125550100", 1, "CA", "QC") == dt.datetime(
        2027, 6, 25, 11, 0, tzinfo=ZoneInfo(NEW_YORK))


def test_staff_list_and_close_tasks_from_the_command_line(twilio, demo, sessions, runner):
    call_through(twilio, demo, "1", "3")
    (task,) = tasks(sessions)
    listed = runner.invoke(args=["tasks", "list"]).output
    assert f"{task.id}" in listed and "reschedule_request" in listed and f"appointment {demo.appointment_id}" in listed
    assert runner.invoke(args=["tasks", "done", str(task.id), "--by", "nurse kim"]).output.strip() == \
        f"task {task.id} done by nurse kim"
    assert runner.invoke(args=["tasks", "list"]).output.strip() == "no open tasks"
    again = runner.invoke(args=["tasks", "done", str(task.id)])
    assert again.exit_code == 1 and f"no open task with id {task.id}" in again.output
    (task,) = tasks(sessions)
    assert (task.status, task.closed_by) == ("done", "nurse kim") and task.closed_at is not None
