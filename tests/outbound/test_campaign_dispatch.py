"""What a campaign's touch does when it is due: the checks made again at dispatch (consent, a
daily contact cap, a moved due time), retries by call result, the text that follows a call that
never reached anyone, and the steps a patient's answer makes unnecessary."""

import datetime as dt

import pytest
from sqlalchemy import select, update

from ivr.models import Appointment, Campaign, CampaignStep, Clinic, Patient, Touch, utcnow
from outbound.jobs import place_touch_call
from tests.support import call_sid


@pytest.fixture
def step(sessions, demo):
    """The demo campaign's step: busy and no-answer retried up to 3 calls, then a text."""
    with sessions.begin() as session:
        step = session.scalars(select(CampaignStep).join(CampaignStep.campaign).join(Campaign.clinic)
                               .join(Clinic.patients).where(Patient.phone == demo.patient_phone,
                                                            CampaignStep.name == "reminder")).one()
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(campaign_step_id=step.id))
        return step.id


def touch_row(sessions, touch_id) -> Touch:
    with sessions() as session:
        return session.get(Touch, touch_id)


def set_step(sessions, step_id, **values):
    with sessions.begin() as session:
        session.execute(update(CampaignStep).where(CampaignStep.id == step_id).values(**values))


def dial(app, sessions, touch_id) -> str | None:
    """Make the touch due now and run its job."""
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == touch_id).values(due_at=utcnow()))
    with app.app_context():
        return place_touch_call(touch_id)


def ends(twilio, touch_id, sid, status, **extra):
    response = twilio.post(f"/twilio/status/outbound/{touch_id}", {"CallSid": sid, "CallStatus": status, **extra})
    assert response.status_code == 204


def test_a_busy_line_is_tried_again_up_to_the_steps_limit_then_texted(app, twilio, sessions, demo, step, dialer):
    for attempt in (1, 2):
        sid = dial(app, sessions, demo.touch_id)
        before = utcnow()
        ends(twilio, demo.touch_id, sid, "busy" if attempt == 1 else "no-answer")
        touch = touch_row(sessions, demo.touch_id)
        assert (touch.status, touch.attempts) == ("planned", attempt)
        assert before + dt.timedelta(minutes=30) <= touch.due_at <= utcnow() + dt.timedelta(minutes=30)
        assert touch.last_error == f"{'busy' if attempt == 1 else 'no-answer'}; attempt {attempt + 1} of 3 due"
    sid = dial(app, sessions, demo.touch_id)
    ends(twilio, demo.touch_id, sid, "busy")
    assert (touch_row(sessions, demo.touch_id).status, len(dialer.requests)) == ("unreached", 3)
    with sessions() as session:
        text = session.scalars(select(Touch).where(Touch.appointment_id == demo.appointment_id,
                                                   Touch.step == "reminder-text")).one()
        assert (text.channel, text.flow, text.status, text.campaign_step_id) == ("sms", "text_reminder", "planned", step)
    # The text's job sends the reminder text itself.
    with app.app_context():
        assert place_touch_call(text.id) is None
    assert touch_row(sessions, text.id).status == "completed"


@pytest.mark.parametrize("retry_on,status", [("busy,no-answer", "completed"), ("busy,no-answer,machine", "planned")])
def test_an_answering_machine_counts_as_reached_unless_the_step_retries_machines(
        app, twilio, sessions, demo, step, retry_on, status):
    set_step(sessions, step, retry_on=retry_on)
    sid = dial(app, sessions, demo.touch_id)
    ends(twilio, demo.touch_id, sid, "completed", AnsweredBy="machine_end_beep")
    assert touch_row(sessions, demo.touch_id).status == status


def test_a_failed_call_is_not_retried_unless_the_step_says_so_and_no_text_without_a_fallback(
        app, twilio, sessions, demo, step):
    set_step(sessions, step, fallback_sms=False)
    ends(twilio, demo.touch_id, dial(app, sessions, demo.touch_id), "failed")
    assert touch_row(sessions, demo.touch_id).status == "unreached"
    with sessions() as session:
        assert session.scalars(select(Touch.step).where(Touch.appointment_id == demo.appointment_id)).all() == ["reminder"]


def test_a_lone_reminder_is_never_retried(app, twilio, sessions, demo):
    ends(twilio, demo.touch_id, dial(app, sessions, demo.touch_id), "busy")
    assert touch_row(sessions, demo.touch_id).status == "unreached"


def test_a_late_callback_of_an_earlier_attempt_does_not_settle_the_call_ringing_now(
        app, twilio, sessions, demo, step, dialer):
    first = dial(app, sessions, demo.touch_id)
    ends(twilio, demo.touch_id, first, "busy")
    second = dial(app, sessions, demo.touch_id)
    assert touch_row(sessions, demo.touch_id).call_sid == second != first
    # The final status of some earlier call of this touch (one whose dial went unanswered, say)
    # arrives now: it is recorded on its own call and leaves the touch's current call alone.
    stray = "CA" + "a" * 32
    response = twilio.post(f"/twilio/status/outbound/{demo.touch_id}/1", {"CallSid": stray, "CallStatus": "busy"})
    assert response.status_code == 204
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts, touch.call_sid) == ("placed", 2, second)
    ends(twilio, demo.touch_id, second, "completed")
    assert touch_row(sessions, demo.touch_id).status == "completed"


def test_an_earlier_attempts_callback_before_the_job_records_the_sid_is_not_taken_for_this_one(
        app, twilio, sessions, demo, step):
    ends(twilio, demo.touch_id, dial(app, sessions, demo.touch_id), "busy")
    with sessions.begin() as session:  # attempt 2 claimed; its dial has not answered yet
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="dialing", attempts=2))
    stray = "CA" + "b" * 32
    assert twilio.post(f"/twilio/status/outbound/{demo.touch_id}/1",
                       {"CallSid": stray, "CallStatus": "no-answer"}).status_code == 204
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.call_sid) == ("dialing", None)
    # Attempt 2's own callback, first to arrive, is this attempt's: it is taken.
    current = "CA" + "c" * 32
    assert twilio.post(f"/twilio/status/outbound/{demo.touch_id}/2",
                       {"CallSid": current, "CallStatus": "busy"}).status_code == 204
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts, touch.call_sid) == ("planned", 2, None)
    assert touch.last_error == "busy; attempt 3 of 3 due"


def second_touch_under_a_cap_of_one(sessions, demo) -> int:
    """Jane's clinic allows one contact a day; a second touch of hers is due now. Its id."""
    with sessions.begin() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        appointment.patient.clinic.daily_contact_cap = 1
        second = Touch(appointment=appointment, step="second", channel="voice", due_at=utcnow())
        session.add(second)
        session.flush()
        return second.id


def test_the_daily_contact_cap_holds_a_second_contact_until_tomorrow(app, sessions, demo, dialer):
    second_id = second_touch_under_a_cap_of_one(sessions, demo)
    assert dial(app, sessions, demo.touch_id) is not None
    assert dial(app, sessions, second_id) is None
    held = touch_row(sessions, second_id)
    assert (held.status, held.attempts, held.last_error) == ("planned", 0, "daily contact cap reached")
    # The demo clinic calls from midnight in New York: the next contact is tomorrow's first minute there.
    from zoneinfo import ZoneInfo
    tomorrow = (utcnow().astimezone(ZoneInfo("America/New_York")) + dt.timedelta(days=1)).date()
    assert held.due_at == dt.datetime.combine(tomorrow, dt.time(0), ZoneInfo("America/New_York"))
    assert len(dialer.requests) == 1


def test_a_touch_whose_time_moved_later_is_not_dialled_early(app, sessions, demo, dialer):
    later = utcnow() + dt.timedelta(hours=2)
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(due_at=later))
    with app.app_context():
        assert place_touch_call(demo.touch_id) is None
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts, touch.due_at, touch.last_error) == ("planned", 0, later, "not due yet")
    assert dialer.requests == []


def test_a_campaign_that_requires_consent_skips_a_patient_without_it_at_dispatch(app, sessions, demo, step, dialer):
    with sessions.begin() as session:
        session.get(CampaignStep, step).campaign.require_consent = True
        session.get(Appointment, demo.appointment_id).patient.consent_at = None
    assert dial(app, sessions, demo.touch_id) is None
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.last_error) == ("skipped", "no consent recorded")
    assert dialer.requests == []


def test_a_day_off_at_dispatch_puts_the_touch_back_for_the_next_allowed_day(app, sessions, demo, dialer):
    from zoneinfo import ZoneInfo
    from outbound.hours import WEEKDAYS

    zone = ZoneInfo("America/New_York")
    today = utcnow().astimezone(zone).date()
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).patient.no_contact_days = WEEKDAYS[today.weekday()]
    assert dial(app, sessions, demo.touch_id) is None
    touch = touch_row(sessions, demo.touch_id)
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), zone)
    assert (touch.status, touch.due_at, touch.last_error) == ("planned", tomorrow,
                                                                "a day the patient asked not to be contacted on")
    assert dialer.requests == []


def test_confirming_on_the_call_skips_the_campaigns_later_steps(app, twilio, sessions, demo, step):
    from tests.ivr.test_webhooks import answer, press

    with sessions.begin() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        session.add(Touch(appointment=appointment, step="later", channel="sms", due_at=utcnow() + dt.timedelta(hours=5),
                          campaign_step_id=step))
        session.add(Touch(appointment=appointment, step="lone", channel="sms", due_at=utcnow() + dt.timedelta(hours=5)))
    answer(twilio, demo)
    press(twilio, "1")  # it is Jane
    press(twilio, "1")  # she confirms
    with sessions() as session:
        rows = {t.step: (t.status, t.last_error) for t in session.scalars(
            select(Touch).where(Touch.appointment_id == demo.appointment_id))}
    assert rows["later"] == ("skipped", "appointment confirmed")
    assert rows["lone"] == ("planned", None)  # not a campaign's: its own job checks the status


def test_every_call_attempt_counts_toward_the_daily_cap(app, twilio, sessions, demo, step, dialer):
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).patient.clinic.daily_contact_cap = 2
    ends(twilio, demo.touch_id, dial(app, sessions, demo.touch_id), "busy")
    ends(twilio, demo.touch_id, dial(app, sessions, demo.touch_id), "busy")
    assert dial(app, sessions, demo.touch_id) is None  # a third ring today would pass the cap
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts, touch.last_error) == ("planned", 2, "daily contact cap reached")
    assert len(dialer.requests) == 2


def test_two_workers_with_two_touches_for_one_patient_under_a_cap_of_one_dial_once(app, sessions, demo, dialer):
    from tests.support import race

    ids = iter([demo.touch_id, second_touch_under_a_cap_of_one(sessions, demo)])
    results = race(app, lambda: place_touch_call(next(ids)))
    assert sorted(r is None for r in results) == [False, True]
    assert len(dialer.requests) == 1


def test_pausing_a_campaign_pauses_the_clinics_outreach(runner, sessions, redis):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    with sessions() as session:
        campaign = session.scalars(select(Campaign)).one()
    assert runner.invoke(args=["campaign", "active", str(campaign.id), "off"]).exit_code == 0
    ran = runner.invoke(args=["campaign", "run"])
    assert ran.output.startswith("planned 0 new contact(s); queued 0;"), ran.output
    assert "no active campaign with steps for its appointment type" in ran.output
    with sessions() as session:
        assert session.scalars(select(Touch)).all() == []


def test_moving_an_appointment_by_hand_replans_its_waiting_steps(runner, sessions, demo, step):
    from zoneinfo import ZoneInfo

    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(due_at=utcnow() + dt.timedelta(hours=1)))
    zone = ZoneInfo("America/New_York")
    when = (utcnow().astimezone(zone) + dt.timedelta(days=10)).replace(hour=14, minute=30, second=0, microsecond=0)
    moved = runner.invoke(args=["appointments", "move", str(demo.appointment_id), when.strftime("%Y-%m-%d %H:%M")])
    assert moved.output.strip() == (f"appointment {demo.appointment_id}: now {when:%Y-%m-%d %H:%M} "
                                    "(America/New_York); 1 waiting contact(s) planned again")
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).starts_at == when
        # The demo step is 72 h before, on the patient's clock.
        assert session.get(Touch, demo.touch_id).due_at == when - dt.timedelta(days=3)
    past = runner.invoke(args=["appointments", "move", str(demo.appointment_id), "2020-01-01 09:00"])
    assert past.exit_code == 2 and "the new time has passed" in past.output
    missing = runner.invoke(args=["appointments", "move", "999", "2030-01-01 09:00"])
    assert missing.output.strip() == "Error: no appointment with id 999"
