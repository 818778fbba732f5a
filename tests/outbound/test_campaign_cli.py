"""`ivr campaign`: set up a cadence, preview it, run it, and see where it stands."""

import datetime as dt

import pytest
from sqlalchemy import select

from ivr.models import Appointment, Campaign, Patient, Touch, utcnow
from outbound.cli import parse_span, show_span


def invoke(runner, *args):
    return runner.invoke(args=[str(a) for a in args])


@pytest.fixture
def clinic(runner, sessions) -> int:
    """The demo clinic with its own campaign paused, so the tests set up theirs."""
    assert invoke(runner, "seed-demo").exit_code == 0
    with sessions.begin() as session:
        campaign = session.scalars(select(Campaign)).one()
        campaign.active = False
        return campaign.clinic_id


@pytest.mark.parametrize("text,minutes,shown", [("-72h", -4320, "-3d"), ("-90m", -90, "-90m"), ("-2d", -2880, "-2d"),
                                                ("-24h", -1440, "-24h"), ("+2h", 120, "+2h")])
def test_spans_read_and_show(text, minutes, shown):
    assert parse_span(text) == minutes
    assert show_span(minutes) == shown


def test_a_campaign_is_set_up_listed_and_run(runner, sessions, clinic):
    added = invoke(runner, "campaign", "add", clinic, "Reminders")
    assert added.exit_code == 0, added.output
    campaign_id = int(added.output.split()[1])
    assert invoke(runner, "campaign", "step", campaign_id, "72h-call", "--at", "-72h", "--channel", "voice",
                  "--for", "voice", "--fallback-sms", "--retry-after", "30m").output.strip() == (
        f"campaign {campaign_id}: step '72h-call' added: -3d, a call, for patients who prefer voice; "
        "retries busy, no-answer every 30m up to 3 calls, then a text")
    invoke(runner, "campaign", "step", campaign_id, "24h-text", "--at", "-24h", "--channel", "sms")
    listed = invoke(runner, "campaign", "list").output
    assert f"{campaign_id}  Reminders  clinic {clinic}  every appointment type  active" in listed
    assert "    24h-text: -24h, a text, for everyone" in listed
    # The demo's visits are one and two days away, so every 72 h call is overdue: due now, unless
    # the 24 h text is overdue too (then the text alone goes now). A text due within the hour is
    # planned as well.
    # The 72 h call is only for patients who prefer calls (the demo's Linda prefers texts).
    with sessions() as session:
        starts = {a.id: (a.starts_at, a.patient.preferred_channel) for a in session.scalars(select(Appointment))}
    now = utcnow()
    expected = []
    for appointment, (at, channel) in starts.items():
        text_due = at - dt.timedelta(hours=24)
        if text_due > now and channel == "voice":
            expected.append((appointment, "72h-call", "voice"))
        if text_due <= now + dt.timedelta(hours=1):
            expected.append((appointment, "24h-text", "sms"))
    ran = invoke(runner, "campaign", "run", "--within-hours", "1")
    assert ran.exit_code == 0, ran.output
    assert ran.output.splitlines()[0].startswith(f"planned {len(expected)} new contact(s); queued {len(expected)};")
    with sessions() as session:
        steps = sorted((t.appointment_id, t.step, t.channel) for t in session.scalars(select(Touch)))
    assert steps == sorted(expected)
    status = invoke(runner, "campaign", "status").output.splitlines()
    assert status[0].split() == ["campaign", "step", "state", "contacts"]
    counts = {step: sum(s == step for _, s, _ in expected) for step in ("72h-call", "24h-text")}
    assert sorted(line.split()[1:] for line in status[1:]) == sorted(
        [step, "planned", str(n)] for step, n in counts.items() if n)
    again = invoke(runner, "campaign", "run", "--within-hours", "1")
    assert again.output.splitlines()[0].startswith("planned 0 new contact(s); queued 0;")


def test_plan_shows_days_channels_and_what_is_held_back_without_writing(runner, sessions, clinic):
    campaign_id = int(invoke(runner, "campaign", "add", clinic, "Texts").output.split()[1])
    invoke(runner, "campaign", "step", campaign_id, "24h-text", "--at", "-24h", "--channel", "sms")
    with sessions.begin() as session:
        jane = session.scalars(select(Patient).where(Patient.first_name == "Jane")).one()
        jane.opted_out_at = utcnow()
    shown = invoke(runner, "campaign", "plan")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].split() == ["day", "channel", "step", "contacts"]
    # Robert's, Maria's and Linda's texts; Jane's held back.
    assert sum(int(line.split()[-1]) for line in lines[1:] if "24h-text" in line and "sms" in line) == 3
    assert lines[-2:] == ["held back:", "  24h-text: 1 opted out"]
    with sessions() as session:
        assert session.scalars(select(Touch)).all() == []


@pytest.mark.parametrize("args,message", [
    (["campaign", "add", "99", "X"], "Error: no clinic with id 99"),
    (["campaign", "step", "99", "a", "--at", "-1h"], "Error: no campaign with id 99"),
    (["campaign", "step", "1", "a", "--at", "soon"], "'soon' is not a time span: write it as -72h, -90m or -2d"),
    (["campaign", "step", "1", "a", "--at", "2h"], "a reminder step comes before the appointment"),
    (["campaign", "step", "1", "a", "--at", "-2h", "--retry-on", "busy,later"],
     "later: use any of busy, no-answer, failed, machine, or 'none'"),
    (["campaign", "step", "1", "a b", "--at", "-2h"], "a step name is up to 30 letters"),
    (["campaign", "step", "1", "a", "--at", "-2h", "--retry-after", "1m"], "wait at least 5m and at most 7d"),
    (["campaign", "step", "1", "a", "--at", "-2h", "--retry-after", "99999999999m"], "wait at least 5m and at most 7d"),
    (["campaign", "step", "1", "a", "--at", "-1000000d"], "at most 90 days before the appointment"),
    (["campaign", "add", "1", "X", "--type", "t" * 41], "an appointment type is at most 40 characters"),
    (["campaign", "add", "1", "   "], "a campaign name is 1 to 100 characters"),
    (["campaign", "plan", "--to", "9999-12-31"], "show at most a year at a time"),
    (["campaign", "plan", "--from", "2026-12-09", "--to", "2026-12-08"], "--to is before --from"),
    (["campaign", "active", "99", "on"], "Error: no campaign with id 99"),
])
def test_mistakes_get_one_line(runner, clinic, args, message):
    result = invoke(runner, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_two_active_campaigns_for_one_kind_of_visit_are_refused(runner, clinic):
    first = int(invoke(runner, "campaign", "add", clinic, "One").output.split()[1])
    second = invoke(runner, "campaign", "add", clinic, "Two")
    assert second.exit_code == 1
    assert second.output.strip() == (f"Error: campaign {first} 'One' is active for every appointment type already; "
                                     f"pause it first (`ivr campaign active {first} off`)")
    assert invoke(runner, "campaign", "add", clinic, "New", "--type", "new patient").exit_code == 0
    assert invoke(runner, "campaign", "add", clinic, "One").output.strip() == (
        f"Error: clinic {clinic} has a campaign named 'One' already")
    assert invoke(runner, "campaign", "add", clinic, "One ").output.strip() == (  # the name as it is kept
        f"Error: clinic {clinic} has a campaign named 'One' already")
    assert invoke(runner, "campaign", "active", "1", "on").exit_code == 1  # the demo's, paused above


def test_patient_contact_days_and_clinic_cap(runner, sessions, clinic):
    with sessions() as session:
        jane = session.scalars(select(Patient).where(Patient.first_name == "Jane")).one().id
    assert invoke(runner, "patients", "contact", jane, "--days-off", "Saturday,sun", "--not-before",
                  "2027-01-04").output.strip() == f"patient {jane}: days off sat,sun; first day for outreach 2027-01-04"
    assert invoke(runner, "patients", "contact", jane, "--days-off", "none", "--any-day").output.strip() == (
        f"patient {jane}: days off none; first day for outreach any")
    every = invoke(runner, "patients", "contact", jane, "--days-off", "mon,tue,wed,thu,fri,sat,sun")
    assert every.exit_code == 2 and "opt the patient out instead" in every.output
    for wrong in ("someday", "monster"):
        bad = invoke(runner, "patients", "contact", jane, "--days-off", wrong)
        assert bad.exit_code == 2 and f"unknown weekday '{wrong}'" in bad.output
    assert invoke(runner, "clinics", "contact-cap", clinic, "3").output.strip() == (
        f"clinic {clinic}: at most 3 contact(s) per patient a day")
    assert invoke(runner, "clinics", "calls-at-once", clinic, "4").output.strip() == (
        f"clinic {clinic}: at most 4 outbound call(s) at once")
    with sessions() as session:
        from ivr.models import Clinic
        assert (session.get(Clinic, clinic).daily_contact_cap, session.get(Clinic, clinic).max_calls_in_progress) == (3, 4)
        assert (session.get(Patient, jane).no_contact_days, session.get(Patient, jane).contact_not_before) == (None, None)
