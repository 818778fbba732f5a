"""Text messages across the real stack: the worker sends through the sandbox carrier's REST API
with the real twilio client, the carrier reports delivery and the patient's replies over signed
HTTP, and the database records it all."""

import time

import pytest
from sqlalchemy import select, update

from ivr.models import Appointment, Clinic, Message, Patient, PhoneOptOut, Prescription, Task, Touch, utcnow
from ivr.sandbox import calling, script as scripts
from ivr.sandbox.carrier import SandboxCarrier
from outbound.queueing import outbound_queue
from outbound.worker import AppSimpleWorker

JANE = "+12125550143"
CLINIC = "+12125550100"


@pytest.fixture
def live(sandbox_app_factory):
    """The app on a real port with the sandbox carrier and the demo clinic; Jane prefers texts."""
    from ivr import demo

    with calling.serve(sandbox_app_factory) as (app, _base):
        sessions = app.extensions["ivr"].sessions
        with sessions.begin() as session:
            demo.seed(session)
            session.execute(update(Patient).where(Patient.first_name == "Jane").values(preferred_channel="sms"))
            # Callers' calls ring staff themselves: these tests are about the texts after a call
            # (tests/sandbox/test_caller_queue.py has the queue's).
            session.execute(update(Clinic).values(queue_callers=False))
            # Nor about refill prompts (tests/sandbox/test_refills.py): no prescription falls due;
            # and Jane is the only one texted (the demo's Linda, who prefers texts too, has no visit).
            session.execute(update(Prescription).values(refill_due_on=None))
            session.execute(update(Appointment).where(Appointment.patient_id.in_(
                select(Patient.id).where(Patient.first_name == "Linda"))).values(status="cancelled"))
        yield app


def services(app):
    return app.extensions["ivr"]


def store(app):
    return SandboxCarrier.store_for(services(app).settings, services(app).redis)


def work(app):
    """What the worker would do now: send queued texts, place queued calls."""
    AppSimpleWorker([outbound_queue(services(app).redis)], connection=services(app).redis, app=app).work(burst=True)


def settle(app, condition, timeout=20):
    """Run the worker until the condition holds (deliveries and replies travel in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        work(app)
        with services(app).sessions() as session:
            if condition(session):
                return
        time.sleep(0.1)
    raise AssertionError("the condition never held")


def texts_to(app, number):
    return [m["body"] for m in store(app).messages(number) if m["to"] == number]


def jane(session):
    return session.scalars(select(Patient).where(Patient.first_name == "Jane")).one()


def jane_appointment(session):
    return session.scalars(select(Appointment).join(Appointment.patient).where(Patient.first_name == "Jane")).one()


def schedule(app):
    result = app.test_cli_runner().invoke(args=["reminders", "schedule", "--within-hours", "72"])
    assert result.exception is None, result.output


def test_a_patient_who_prefers_texts_gets_one_and_confirms_by_replying_c(live):
    store(live).set_phone(JANE, scripts.parse({"texts": {"replies": ["C"]}}))
    schedule(live)
    settle(live, lambda s: jane_appointment(s).status == "confirmed")
    settle(live, lambda s: s.scalar(select(Message.status).where(Message.kind == "reply")) == "delivered")
    reminder, thanks = texts_to(live, JANE)
    assert reminder.startswith("Riverside Family Clinic: Hi Jane, you have an appointment on ")
    assert reminder.endswith(" at 9:30 AM, at the Main Street office. Reply C to confirm, R for a new time, X to cancel.")
    assert thanks == "Thank you. Your appointment is confirmed. Riverside Family Clinic"
    with services(live).sessions() as session:
        touch = session.scalars(select(Touch).where(Touch.appointment_id == jane_appointment(session).id)).one()
        sent = session.scalars(select(Message).where(Message.kind == "reminder")).one()
    assert (touch.channel, touch.flow, touch.status) == ("sms", "text_reminder", "completed")
    assert (sent.status, sent.segments, sent.encoding) == ("delivered", 2, "gsm7")


def test_r_asks_for_a_new_time_and_leaves_a_task(live):
    store(live).set_phone(JANE, scripts.parse({"texts": {"replies": ["r"]}}))
    schedule(live)
    settle(live, lambda s: s.scalar(select(Task.kind)) == "reschedule_request")
    with services(live).sessions() as session:
        assert jane_appointment(session).status == "reschedule_requested"


def test_stop_opts_the_patient_out_of_every_text_and_call_from_then_on(live):
    store(live).set_phone(JANE, scripts.parse({"texts": {"replies": ["STOP"]}}))
    schedule(live)
    settle(live, lambda s: jane(s).opted_out_at is not None)
    with services(live).sessions() as session:
        assert (jane(session).opted_out_source, session.scalar(select(PhoneOptOut.phone))) == ("sms keyword", JANE)
        appointment = jane_appointment(session)
    # Nothing more reaches her: not a reply to STOP (the carrier sends its own), not a new
    # reminder, not a call, not a text the server tries anyway.
    before = len(texts_to(live, JANE))
    with services(live).sessions.begin() as session:
        session.execute(update(Touch).values(status="skipped"))
        session.add(Touch(appointment_id=appointment.id, step="reminder-again", channel="sms",
                          flow="text_reminder", due_at=utcnow()))
        session.add(Touch(appointment_id=appointment.id, step="call-again", channel="voice", due_at=utcnow()))
    live.test_cli_runner().invoke(args=["reminders", "reconcile"])
    work(live)
    assert len(texts_to(live, JANE)) == before
    with services(live).sessions() as session:
        assert {t.step: t.last_error for t in session.scalars(select(Touch).where(Touch.status == "skipped"))
                if t.step != "reminder"} == {"reminder-again": "patient opted out", "call-again": "patient opted out"}
    assert [c for c in store(live).calls() if c["to"] == JANE] == []


def test_help_answers_with_the_clinics_number(live):
    carrier = SandboxCarrier(services(live).settings, services(live).redis)
    carrier.texting.text_in(JANE, CLINIC, "help")
    settle(live, lambda s: s.scalar(select(Message.status).where(Message.kind == "help")) == "delivered")
    assert texts_to(live, JANE)[-1] == ("Riverside Family Clinic: appointment messages. For help, call "
                                        "(212) 555-0100. Reply STOP to stop getting texts.")


def test_a_text_nobody_asked_for_goes_to_staff_and_says_so(live):
    carrier = SandboxCarrier(services(live).settings, services(live).redis)
    carrier.texting.text_in("+12125550177", CLINIC, "Can I bring my cat? 🐈\x07")
    settle(live, lambda s: s.scalar(select(Message.status).where(Message.kind == "passed_to_staff")) == "delivered")
    with services(live).sessions() as session:
        task = session.scalars(select(Task)).one()
        received = session.get(Message, task.message_id)
    assert (task.kind, task.phone, task.status) == ("unmatched_text", "+12125550177", "open")
    assert received.body == "Can I bring my cat? 🐈 " and received.encoding == "ucs2"
    assert texts_to(live, "+12125550177")[-1].startswith("Thank you. We passed your message to our staff")


def call_in(app, caller, staff="no-answer", replies=()):
    """A sandbox phone calls the clinic; returns the call's SID once its callbacks are in."""
    result = calling.place_inbound_call(app, caller, CLINIC, scripts.parse({"staff": staff, "replies": list(replies)}))
    return result.outcome["call_sid"]


def text_back_decisions(app):
    from ivr.models import CallEvent

    with services(app).sessions() as session:
        return [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.kind == "text_back")
                                                  .order_by(CallEvent.id))]


CALLER = "+12125550188"


def test_a_caller_nobody_served_gets_one_text_a_day_with_a_call_back_behind_it(live):
    call_in(live, CALLER)
    settle(live, lambda s: s.scalar(select(Message.status).where(Message.kind == "text_back")) == "delivered")
    assert texts_to(live, CALLER) == ["Riverside Family Clinic: sorry we missed your call. Someone will call you "
                                      "back within one business day. In an emergency, dial 911."]
    call_in(live, CALLER)  # the same day, again: no second text
    settle(live, lambda s: len(text_back_decisions(live)) == 2)
    first, second = text_back_decisions(live)
    assert first["decision"] == "sent" and second == {"decision": "suppressed", "reason": "already texted today"}
    with services(live).sessions() as session:
        task = session.get(Task, first["task_id"])
    assert (task.kind, task.phone, task.status) == ("call_back", CALLER, "open")
    assert len(texts_to(live, CALLER)) == 1


@pytest.mark.parametrize("caller,staff,reason", [
    ("+12125550189", "answers", "a person took the call"),
    ("+442079460123", "no-answer", "not a mobile number"),  # a London landline
])
def test_no_missed_call_text_when_someone_answered_or_the_number_cannot_take_one(live, caller, staff, reason):
    call_in(live, caller, staff=staff)
    settle(live, lambda s: len(text_back_decisions(live)) == 1)
    assert text_back_decisions(live) == [{"decision": "suppressed", "reason": reason}]
    assert texts_to(live, caller) == []


def test_no_missed_call_text_to_a_number_that_opted_out(live):
    carrier = SandboxCarrier(services(live).settings, services(live).redis)
    carrier.texting.text_in(CALLER, CLINIC, "STOP")
    call_in(live, CALLER)
    settle(live, lambda s: len(text_back_decisions(live)) == 1)
    assert text_back_decisions(live) == [{"decision": "suppressed", "reason": "the number opted out"}]


def test_outcomes_show_how_a_reminder_text_went(live):
    store(live).set_phone(JANE, scripts.parse({"texts": {"replies": ["C"]}}))
    schedule(live)
    settle(live, lambda s: jane_appointment(s).status == "confirmed")
    output = live.test_cli_runner().invoke(args=["reminders", "outcomes"]).output
    with services(live).sessions() as session:
        appointment_id = jane_appointment(session).id
    # Other patients' calls may still be in progress: "1 call(s) still in progress" is no row.
    (row,) = [line.split() for line in output.splitlines() if line.split()[:2] == [str(appointment_id), "reminder"]]
    assert row == [str(appointment_id), "reminder", "completed", "text", "delivered", "answered", "confirmed"]
