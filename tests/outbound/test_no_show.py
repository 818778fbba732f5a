"""No-show recovery: a visit marked missed stops its reminders, plans its campaign's recovery step
(an offer to book again by call or text), and a high-priority patient gets a task at once."""

import datetime as dt

import pytest
from sqlalchemy import select, update

from ivr.models import Appointment, CampaignStep, Message, Task, Touch, utcnow
from outbound.jobs import place_touch_call
from tests.support import PUBLIC_BASE_URL, call_sid, parse_twiml, spoken

CLINIC = "+12125550100"


def missed(sessions, demo, hours_ago=3) -> dt.datetime:
    """Jane's visit began `hours_ago`; her reminder touch is the demo campaign's, still planned."""
    starts = utcnow() - dt.timedelta(hours=hours_ago)
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).starts_at = starts
        step = session.scalars(select(CampaignStep).where(CampaignStep.name == "reminder")).one()
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(campaign_step_id=step.id))
    return starts


def touches(sessions, appointment_id):
    with sessions() as session:
        return {t.step: t for t in session.scalars(select(Touch).where(Touch.appointment_id == appointment_id))}


def open_tasks(sessions):
    with sessions() as session:
        return [(t.kind, t.appointment_id) for t in session.scalars(select(Task).where(Task.status == "open"))]


def test_marking_a_missed_visit_stops_its_reminders_and_plans_the_offer(runner, sessions, demo):
    starts = missed(sessions, demo, hours_ago=1)
    result = runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    assert result.output.strip() == f"appointment {demo.appointment_id}: marked no-show; 1 recovery contact(s) planned"
    rows = touches(sessions, demo.appointment_id)
    assert (rows["reminder"].status, rows["reminder"].last_error) == ("skipped", "appointment no_show")
    recovery = rows["missed"]
    # Two hours after the visit began (the demo clinic calls at any hour).
    assert (recovery.status, recovery.flow, recovery.channel, recovery.due_at) == (
        "planned", "no_show", "voice", starts + dt.timedelta(hours=2))
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).status == "no_show"
    assert open_tasks(sessions) == []
    again = runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    assert again.output.strip() == f"Error: appointment {demo.appointment_id} is marked no-show already"


def test_a_high_priority_patient_gets_a_task_at_once(runner, sessions, demo):
    missed(sessions, demo)
    with sessions() as session:
        patient_id = session.get(Appointment, demo.appointment_id).patient_id
    assert runner.invoke(args=["patients", "priority", str(patient_id), "high"]).output.strip() == (
        f"patient {patient_id}: high priority")
    result = runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    assert result.output.strip().endswith("(high priority)")
    assert open_tasks(sessions) == [("no_show_follow_up", demo.appointment_id)]


@pytest.mark.parametrize("args,message", [
    (["appointments", "no-show", "999"], "Error: no appointment with id 999"),
    (["patients", "priority", "999", "high"], "Error: no patient with id 999"),
])
def test_mistakes_get_one_line(runner, demo, args, message):
    assert runner.invoke(args=args).output.strip() == message


def test_a_visit_still_ahead_cannot_be_missed(runner, demo):
    result = runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    assert result.output.strip() == f"Error: appointment {demo.appointment_id} has not started yet"


def recovery_call(app, runner, sessions, demo) -> int:
    missed(sessions, demo)
    runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    return touches(sessions, demo.appointment_id)["missed"].id


def test_the_recovery_call_names_the_visit_after_identity_and_a_1_asks_for_a_new_one(
        app, runner, twilio, sessions, demo, dialer):
    touch_id = recovery_call(app, runner, sessions, demo)
    sid = call_sid()  # as the carrier answers it (the job's dial is tested below)
    greeting = parse_twiml(twilio.post(f"/twilio/voice/outbound/{touch_id}", {"CallSid": sid}).data)
    assert spoken(greeting) == ["Hello. This is Riverside Family Clinic calling.",
                                "If you are Jane, press 1. If Jane is not available, press 2."]
    offer = spoken(parse_twiml(twilio.post(twilio.next_url(sid, "answer", ""), {"CallSid": sid, "Digits": "1"}).data))
    assert offer[0].startswith("We missed you at your appointment on ")
    assert offer[1] == ("To ask for a new appointment, press 1. If you do not need one, press 2. "
                        "To hear this again, press 9.")
    done = spoken(parse_twiml(twilio.post(twilio.next_url(sid, "answer", ""), {"CallSid": sid, "Digits": "1"}).data))
    assert done == ["Thank you. Someone from our office will call you within one business day. "
                    "We will find a new time with you. Goodbye."]
    assert open_tasks(sessions) == [("rebook_request", demo.appointment_id)]


def test_the_recovery_touch_is_dialled_by_its_job(app, runner, sessions, demo, dialer):
    touch_id = recovery_call(app, runner, sessions, demo)
    with app.app_context():
        assert place_touch_call(touch_id) is not None
    assert [r.url for r in dialer.requests] == [f"{PUBLIC_BASE_URL}/twilio/voice/outbound/{touch_id}"]
    assert touches(sessions, demo.appointment_id)["missed"].status == "placed"


def test_a_recovery_call_waits_no_longer_once_the_visit_is_booked_again(app, runner, sessions, demo, dialer):
    touch_id = recovery_call(app, runner, sessions, demo)
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).status = "booked"
    with app.app_context():
        assert place_touch_call(touch_id) is None
    assert (touches(sessions, demo.appointment_id)["missed"].last_error, dialer.requests) == ("appointment is booked", [])


def test_a_recovery_a_week_after_the_visit_is_not_made(app, runner, sessions, demo, dialer):
    touch_id = recovery_call(app, runner, sessions, demo)
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).starts_at = utcnow() - dt.timedelta(days=8)
    with app.app_context():
        assert place_touch_call(touch_id) is None
    assert touches(sessions, demo.appointment_id)["missed"].last_error == "the missed visit is more than a week old"


def test_by_text_the_offer_names_only_the_clinic_and_a_1_makes_the_task(app, runner, twilio, sessions, demo, messenger):
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).patient.preferred_channel = "sms"
    touch_id = recovery_call(app, runner, sessions, demo)
    assert touches(sessions, demo.appointment_id)["missed"].flow == "text_no_show"
    with app.app_context():
        place_touch_call(touch_id)
    with sessions() as session:
        text = session.scalars(select(Message).where(Message.direction == "outbound")).one()
    assert (text.kind, text.body) == ("no_show", "Riverside Family Clinic: we missed you at your recent appointment. "
                                                 "Reply 1 to ask for a new one, or call us at (212) 555-0100.")
    reply = twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + "1" * 32, "From": demo.patient_phone,
                                                "To": CLINIC, "Body": "1"})
    assert reply.status_code == 200
    assert open_tasks(sessions) == [("rebook_request", demo.appointment_id)]


def test_a_missed_visit_is_not_moved_and_a_cancelled_one_is_not_missed(runner, sessions, demo):
    missed(sessions, demo)
    runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    moved = runner.invoke(args=["appointments", "move", str(demo.appointment_id), "2030-01-07 10:00"])
    assert moved.output.strip() == f"Error: appointment {demo.appointment_id} was missed: book a new appointment instead"
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).status = "cancelled"
    marked = runner.invoke(args=["appointments", "no-show", str(demo.appointment_id)])
    assert marked.output.strip() == (f"Error: appointment {demo.appointment_id} is cancelled: "
                                     "only a booked or confirmed visit can be missed")


def text_offer(app, runner, sessions, demo) -> int:
    """Jane, who prefers texts, missed her visit and got the recovery text; its touch id."""
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).patient.preferred_channel = "sms"
    touch_id = recovery_call(app, runner, sessions, demo)
    with app.app_context():
        place_touch_call(touch_id)
    return touch_id


def reply_1(twilio, demo, sid="2"):
    return twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + sid * 32, "From": demo.patient_phone,
                                               "To": CLINIC, "Body": "1"})


def test_a_reply_after_the_visit_was_booked_again_makes_no_task(app, runner, twilio, sessions, demo, messenger):
    text_offer(app, runner, sessions, demo)
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).status = "booked"
    assert reply_1(twilio, demo).status_code == 200
    assert [kind for kind, _ in open_tasks(sessions)] == ["unmatched_text"]  # a person reads it


def test_the_offer_by_text_lasts_a_week_from_when_it_was_sent(app, runner, twilio, sessions, demo, messenger):
    from ivr.models import Conversation

    text_offer(app, runner, sessions, demo)
    with sessions.begin() as session:
        session.execute(update(Conversation).values(opened_at=utcnow() - dt.timedelta(days=6, hours=23)))
    reply_1(twilio, demo, "3")
    assert open_tasks(sessions) == [("rebook_request", demo.appointment_id)]
    with sessions.begin() as session:
        session.execute(update(Task).values(status="done"))
        session.execute(update(Conversation).values(opened_at=utcnow() - dt.timedelta(days=7, minutes=1),
                                                    closed_at=None, state={"node": "offered"}))
    reply_1(twilio, demo, "4")
    assert [kind for kind, _ in open_tasks(sessions)] == ["unmatched_text"]


def test_an_unanswered_recovery_call_is_tried_again_then_texted(app, runner, twilio, sessions, demo, dialer):
    touch_id = recovery_call(app, runner, sessions, demo)
    with sessions.begin() as session:
        session.execute(update(CampaignStep).where(CampaignStep.name == "missed").values(max_attempts=2))
    for attempt, expected in ((1, "planned"), (2, "unreached")):
        with sessions.begin() as session:
            session.execute(update(Touch).where(Touch.id == touch_id).values(due_at=utcnow()))
        with app.app_context():
            sid = place_touch_call(touch_id)
        twilio.post(f"/twilio/status/outbound/{touch_id}/{attempt}", {"CallSid": sid, "CallStatus": "no-answer"})
        assert touches(sessions, demo.appointment_id)["missed"].status == expected
    text = touches(sessions, demo.appointment_id)["missed-text"]
    assert (text.flow, text.channel, text.status) == ("text_no_show", "sms", "planned")


@pytest.mark.parametrize("at,ok", [("+0m", True), ("+6d", True), ("+7d", False), ("-1h", False)])
def test_a_no_show_step_comes_within_the_week_after_the_visit(runner, sessions, demo, at, ok):
    result = runner.invoke(args=["campaign", "step", "1", "later", "--no-show", "--at", at])
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert "a no-show step comes after the missed visit, within a week" in result.output
