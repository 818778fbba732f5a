"""Campaigns: steps planned relative to each appointment, inside the patient's own calling window,
once per (appointment, step), and the rules that hold a contact back."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr.models import Appointment, Campaign, CampaignStep, Clinic, Location, Patient, PhoneOptOut, Touch
from outbound import campaigns

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York


def local(day: int, hour: int, minute: int = 0, zone=NY, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


@pytest.fixture
def clinic(sessions):
    """A clinic calling 9:00-20:00 with a campaign: a call 72 h before for patients who prefer
    calls, a text 24 h before for everyone."""
    with sessions.begin() as session:
        clinic = Clinic(name="Harbor Clinic", phone="+12125550300", timezone="America/New_York")
        session.add_all([clinic, Location(clinic=clinic, name="Harbor")])
        session.add(Campaign(clinic=clinic, name="Reminders", steps=[
            CampaignStep(name="72h-call", offset_minutes=-72 * 60, channel="voice", audience="voice"),
            CampaignStep(name="24h-text", offset_minutes=-24 * 60, channel="sms", audience="all")]))
        session.flush()
        return clinic.id


def campaign_of(session, clinic_id) -> Campaign:
    return session.scalars(select(Campaign).where(Campaign.clinic_id == clinic_id)).one()


def book(sessions, clinic_id, starts_at, *, channel="voice", phone="+12125550143", timezone=None,
         appointment_type=None, **patient) -> int:
    with sessions.begin() as session:
        location = session.scalars(select(Location).where(Location.clinic_id == clinic_id)).first()
        person = Patient(clinic_id=clinic_id, first_name="Ann", last_name="Lee", phone=phone,
                         preferred_channel=channel, timezone=timezone, **patient)
        appointment = Appointment(patient=person, location=location, provider_name="Amara Patel",
                                  starts_at=starts_at, appointment_type=appointment_type)
        session.add(appointment)
        session.flush()
        return appointment.id


def touches(sessions, appointment_id) -> list[tuple[str, str, dt.datetime]]:
    with sessions() as session:
        return [(t.step, t.channel, t.due_at) for t in session.scalars(
            select(Touch).where(Touch.appointment_id == appointment_id).order_by(Touch.due_at))]


def run(sessions, until, now=NOW, **options) -> campaigns.CampaignPlan:
    with sessions.begin() as session:
        return campaigns.plan_campaigns(session, now, until, write=True, **options)


def test_each_step_is_planned_by_channel_rule_and_audience_once(sessions, clinic):
    visit = local(9, 14)  # next Monday 14:00
    by_call = book(sessions, clinic, visit)
    by_text = book(sessions, clinic, visit, channel="sms", phone="+12125550162")
    plan = run(sessions, NOW + dt.timedelta(days=10))
    assert (plan.written, plan.total, dict(plan.held)) == (3, 3, {})
    assert touches(sessions, by_call) == [("72h-call", "voice", local(6, 14)), ("24h-text", "sms", local(8, 14))]
    assert touches(sessions, by_text) == [("24h-text", "sms", local(8, 14))]
    assert plan.planned == {(dt.date(2026, 3, 6), "voice", "72h-call"): 1, (dt.date(2026, 3, 8), "sms", "24h-text"): 2}
    again = run(sessions, NOW + dt.timedelta(days=10))
    assert (again.written, again.total) == (0, 0)
    assert len(touches(sessions, by_call)) == 2


def test_only_steps_due_before_the_horizon_are_planned(sessions, clinic):
    appointment = book(sessions, clinic, local(9, 14))
    assert run(sessions, local(7, 0)).written == 1  # the 72 h call (Friday); the text is Sunday
    assert [step for step, _, _ in touches(sessions, appointment)] == ["72h-call"]


def test_a_step_is_moved_into_the_calling_window_in_the_patients_own_zone(sessions, clinic):
    # An 8:00 Monday visit in Los Angeles (clocks went forward on Sunday): 72 h before is 7:00
    # Friday there (PST) and 24 h before is 8:00 Sunday (PDT); each waits for 9:00 there, not in
    # the clinic's New York.
    la = ZoneInfo("America/Los_Angeles")
    early = book(sessions, clinic, local(9, 8, zone=la), timezone="America/Los_Angeles")
    run(sessions, NOW + dt.timedelta(days=10))
    assert touches(sessions, early) == [("72h-call", "voice", local(6, 9, zone=la)),
                                        ("24h-text", "sms", local(8, 9, zone=la))]


def test_a_step_across_the_spring_change_is_counted_on_the_patients_wall_clock(sessions, clinic):
    # Clocks go forward on Sunday 8 March 2026 in New York. 72 h before Tuesday 10 March 9:30 EDT
    # is Saturday 7 March 9:30 EST (14:30 UTC), inside calling hours; 72 hours of UTC would be
    # 8:30 EST, before them.
    appointment = book(sessions, clinic, local(10, 9, 30))
    run(sessions, NOW + dt.timedelta(days=10))
    assert touches(sessions, appointment)[0] == ("72h-call", "voice", dt.datetime(2026, 3, 7, 14, 30, tzinfo=UTC))


def test_a_late_booking_gets_the_latest_step_due_and_not_the_ones_before_it(sessions, clinic):
    soon = book(sessions, clinic, NOW + dt.timedelta(hours=20))      # both steps overdue
    later = book(sessions, clinic, NOW + dt.timedelta(hours=30), phone="+12125550162")  # 72 h overdue only
    plan = run(sessions, NOW + dt.timedelta(days=3))
    assert [step for step, _, _ in touches(sessions, soon)] == ["24h-text"]
    assert touches(sessions, later) == [("72h-call", "voice", NOW), ("24h-text", "sms", NOW + dt.timedelta(hours=6))]
    assert plan.held == {("72h-call", "superseded by a later step"): 1}


def test_no_contact_window_before_the_visit_holds_the_step_back(sessions, clinic):
    with sessions.begin() as session:
        session.add(CampaignStep(campaign=campaign_of(session, clinic), name="1h-call", offset_minutes=-60,
                                 channel="voice"))
    appointment = book(sessions, clinic, local(2, 21))  # tonight 21:00: 20:00 is past calling hours
    plan = run(sessions, NOW + dt.timedelta(days=1))
    # The text (overdue) goes now; the call an hour before would be after calling hours.
    assert touches(sessions, appointment) == [("24h-text", "sms", NOW)]
    assert plan.held == {("1h-call", "no contact window before the appointment"): 1,
                         ("72h-call", "superseded by a later step"): 1}


def test_days_off_and_a_first_day_move_the_contact(sessions, clinic):
    # The 24 h text falls on Sunday, a day off: Monday 9:00, still before the 14:00 visit.
    sunday_off = book(sessions, clinic, local(9, 14), channel="sms", no_contact_days="sun")
    # No outreach before Friday: the text for a Thursday visit has no window left.
    not_yet = book(sessions, clinic, local(5, 14), channel="sms", phone="+12125550162",
                   contact_not_before=dt.date(2026, 3, 6))
    plan = run(sessions, NOW + dt.timedelta(days=10))
    assert touches(sessions, sunday_off) == [("24h-text", "sms", local(9, 9))]
    assert touches(sessions, not_yet) == []
    assert plan.held == {("24h-text", "no contact window before the appointment"): 1}


def test_opted_out_unconsenting_and_untextable_patients_are_held_back(sessions, clinic):
    with sessions.begin() as session:
        campaign_of(session, clinic).require_consent = True
        session.add(PhoneOptOut(clinic_id=clinic, phone="+12125550178", source="sms"))
    visit = local(9, 14)
    consented = dt.datetime(2026, 1, 1, tzinfo=UTC)
    by_number = book(sessions, clinic, visit, channel="sms", phone="+12125550178", consent_at=consented)
    no_consent = book(sessions, clinic, visit, channel="sms", phone="+12125550162")
    landline = book(sessions, clinic, visit, channel="sms", phone="+442079460000", consent_at=consented)
    plan = run(sessions, NOW + dt.timedelta(days=10))
    assert plan.written == 0 and all(touches(sessions, a) == [] for a in (by_number, no_consent, landline))
    assert plan.held == {("24h-text", "opted out"): 1, ("24h-text", "no consent recorded"): 1,
                         ("24h-text", "not a mobile number"): 1}


def test_an_appointment_follows_its_types_campaign_else_the_clinics_general_one(sessions, clinic):
    with sessions.begin() as session:
        session.add(Campaign(clinic_id=clinic, name="New patients", appointment_type="new patient", steps=[
            CampaignStep(name="week-call", offset_minutes=-7 * 1440, channel="voice")]))
    new = book(sessions, clinic, local(20, 14), appointment_type="new patient")
    follow_up = book(sessions, clinic, local(20, 14), appointment_type="follow-up", phone="+12125550162")
    run(sessions, NOW + dt.timedelta(days=30))
    assert [s for s, _, _ in touches(sessions, new)] == ["week-call"]
    assert [s for s, _, _ in touches(sessions, follow_up)] == ["72h-call", "24h-text"]


def test_a_preview_writes_nothing_and_keeps_to_its_days(sessions, clinic):
    book(sessions, clinic, local(9, 14))
    book(sessions, clinic, local(12, 14), phone="+12125550162")
    with sessions() as session:
        plan = campaigns.plan_campaigns(session, NOW, local(10, 0), since=local(7, 0))
    assert sorted(plan.planned) == [(dt.date(2026, 3, 8), "sms", "24h-text"), (dt.date(2026, 3, 9), "voice", "72h-call")]
    with sessions() as session:
        assert session.scalars(select(Touch)).all() == []


def test_moving_an_appointment_replans_its_waiting_steps(sessions, clinic):
    appointment = book(sessions, clinic, local(9, 14))
    run(sessions, NOW + dt.timedelta(days=10), now=NOW)
    with sessions.begin() as session:
        moved = session.get(Appointment, appointment)
        moved.starts_at = local(16, 14)
        assert campaigns.replan(session, moved, NOW) == 2
    assert touches(sessions, appointment) == [("72h-call", "voice", local(13, 14)), ("24h-text", "sms", local(15, 14))]


def test_a_late_booking_whose_later_step_is_held_back_still_gets_the_earlier_one(sessions, clinic):
    # 20 h ahead both steps are overdue, but the text cannot go to a landline: the call goes.
    landline = book(sessions, clinic, NOW + dt.timedelta(hours=20), phone="+442079460000")
    plan = run(sessions, NOW + dt.timedelta(days=3))
    assert touches(sessions, landline) == [("72h-call", "voice", NOW)]
    assert plan.held == {("24h-text", "not a mobile number"): 1}


def test_appointments_no_campaign_covers_are_reported(sessions, clinic):
    with sessions.begin() as session:
        campaign_of(session, clinic).appointment_type = "new patient"  # the clinic's only campaign
        session.add(Campaign(clinic_id=clinic, name="Follow-ups", appointment_type="follow-up"))  # no steps yet
    book(sessions, clinic, local(4, 14), appointment_type="new patient")
    book(sessions, clinic, local(4, 15), appointment_type="follow-up", phone="+12125550162")
    book(sessions, clinic, local(4, 16), phone="+12125550178")
    plan = run(sessions, NOW + dt.timedelta(days=10))
    assert plan.written == 2  # the new patient's call and text
    assert plan.held == {(campaigns.NO_STEP, "no active campaign with steps for its appointment type"): 2}


def test_a_planner_reading_leaves_sqlite_writable(sessions, clinic):
    """The planner reads in a transaction that does not take SQLite's write lock (webhooks and
    its own per-batch writes go on while it reads)."""
    from ivr.db import read_only

    book(sessions, clinic, local(9, 14))
    with read_only(sessions()) as reading:
        assert reading.scalar(select(Appointment.id)) is not None
        with sessions.begin() as writing:  # would wait the busy timeout, then fail, if locked
            writing.add(PhoneOptOut(clinic_id=clinic, phone="+12125550199", source="sms"))
    with sessions() as session:
        assert session.scalar(select(PhoneOptOut.phone)) == "+12125550199"


def test_a_type_campaign_without_recovery_steps_leaves_recovery_to_the_general_one(sessions, clinic):
    with sessions.begin() as session:
        session.add(CampaignStep(campaign=campaign_of(session, clinic), name="missed", purpose="no_show",
                                 offset_minutes=120, channel="voice"))
        session.add(Campaign(clinic_id=clinic, name="New patients", appointment_type="new patient", steps=[
            CampaignStep(name="week-call", offset_minutes=-7 * 1440, channel="voice")]))
    visit = book(sessions, clinic, NOW - dt.timedelta(hours=3), appointment_type="new patient")
    with sessions.begin() as session:
        session.get(Appointment, visit).status = "no_show"
    run(sessions, NOW + dt.timedelta(days=1))
    assert touches(sessions, visit) == [("missed", "voice", NOW)]  # due an hour ago: now
