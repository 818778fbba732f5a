"""Texts at the webhook and job level: what is refused before sending and why, statuses that only
move forward, the carrier's opt-out error mirrored, and hostile texts stored safely."""

import pytest
from sqlalchemy import select

from ivr.errors import PermanentSendError, SendError
from ivr.messaging import texts
from ivr.models import Message, MessageEvent, Patient, PhoneOptOut
from outbound.queueing import outbound_queue
from outbound.texts import job_id_for_text, send_text
from outbound.worker import AppSimpleWorker

CLINIC = "+12125550100"


def queue(sessions, to, kind="reply"):
    with sessions.begin() as session:
        return texts.queue_text(session, clinic_id=1, to=to, from_=CLINIC, body="Hello from the clinic.", kind=kind)


def message(sessions, message_id):
    with sessions() as session:
        return session.get(Message, message_id)


def events(sessions, message_id):
    with sessions() as session:
        return [(e.kind, e.detail) for e in session.scalars(select(MessageEvent).where(
            MessageEvent.message_id == message_id).order_by(MessageEvent.id))]


def test_a_text_goes_once_with_its_status_callback(app, demo, sessions, messenger):
    message_id = queue(sessions, demo.patient_phone)
    with app.app_context():
        sid = send_text(message_id)
        assert send_text(message_id) is None  # a second run of the same job sends nothing
    (sent,) = messenger.requests
    assert (sent.to, sent.from_, sent.body) == (demo.patient_phone, CLINIC, "Hello from the clinic.")
    assert sent.status_callback == f"https://ivr.example.test/twilio/sms/status/{message_id}"
    assert (message(sessions, message_id).status, message(sessions, message_id).message_sid) == ("queued", sid)


@pytest.mark.parametrize("to,reason", [
    ("+442079460123", "not a mobile number"),   # a London landline: refused before it is sent
    ("+1212555", "not a valid phone number"),
])
def test_a_number_that_cannot_take_a_text_is_refused_before_sending_with_its_reason(app, demo, sessions,
                                                                                   messenger, to, reason):
    message_id = queue(sessions, to)
    with app.app_context():
        assert send_text(message_id) is None
    assert messenger.requests == []
    refused = message(sessions, message_id)
    assert (refused.status, refused.reason) == ("refused", reason)
    assert ("refused", {"reason": reason}) in events(sessions, message_id)


def test_the_carriers_opted_out_error_opts_the_number_out_here(app, demo, sessions, messenger):
    message_id = queue(sessions, demo.patient_phone)
    messenger.fail_with = PermanentSendError("carrier refused the text: HTTP 400, code 21610", code=21610)
    with app.app_context():
        send_text(message_id)
    failed = message(sessions, message_id)
    assert (failed.status, failed.error_code) == ("failed", 21610)
    with sessions() as session:
        assert session.scalar(select(PhoneOptOut.source)) == "carrier 21610"
        assert session.scalars(select(Patient).where(Patient.phone == demo.patient_phone)).one().opted_out_at
    messenger.fail_with = None
    again = queue(sessions, demo.patient_phone)
    with app.app_context():
        send_text(again)
    assert messenger.requests == [] and message(sessions, again).reason == "the number opted out"


def test_a_carrier_outage_is_retried_by_rq(app, demo, sessions, messenger, redis):
    from rq.job import Job, JobStatus

    from outbound.texts import enqueue_text

    message_id = queue(sessions, demo.patient_phone)
    messenger.fail_with = SendError("carrier busy: HTTP 503, code 20503")
    enqueue_text(outbound_queue(redis), message_id)
    AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)
    assert Job.fetch(job_id_for_text(message_id), connection=redis).get_status() == JobStatus.SCHEDULED
    assert message(sessions, message_id).status == "planned"


def status(twilio, message_id, value, **extra):
    return twilio.post(f"/twilio/sms/status/{message_id}", {"MessageSid": "SM" + "1" * 32, "MessageStatus": value,
                                                            **extra})


def test_statuses_only_move_forward_and_repeat_harmlessly(app, twilio, demo, sessions):
    message_id = queue(sessions, demo.patient_phone)
    with app.app_context():
        send_text(message_id)
    for value in ("sent", "delivered", "sent", "delivered", "queued"):
        assert status(twilio, message_id, value).status_code == 204
    assert message(sessions, message_id).status == "delivered"
    assert [d["status"] for k, d in events(sessions, message_id) if k == "status"] == ["sent", "delivered"]


def test_an_undelivered_text_keeps_the_carriers_code(app, twilio, demo, sessions):
    message_id = queue(sessions, demo.patient_phone)
    with app.app_context():
        send_text(message_id)
    status(twilio, message_id, "undelivered", ErrorCode="30003")
    assert (message(sessions, message_id).status, message(sessions, message_id).error_code) == ("undelivered", 30003)
    assert status(twilio, message_id, "exploded").status_code == 400
    assert status(twilio, message_id, "failed", ErrorCode="x").status_code == 400


@pytest.mark.parametrize("body", ["😀" * 800, "x" * 1600, "Hi\x00\x07\x1b there", "", "STOP" + " " * 5])
def test_hostile_texts_are_stored_safely_and_never_break_the_webhook(twilio, demo, sessions, body):
    response = twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + "a" * 32, "From": "+12125550177",
                                                   "To": CLINIC, "Body": body, "NumMedia": "0"})
    assert response.status_code == 200 and response.data.startswith(b"<?xml")
    with sessions() as session:
        stored = session.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert "\x00" not in stored.body and len(stored.body) <= 2000


def test_a_text_to_a_number_no_clinic_uses_is_kept_and_answered_by_nobody(twilio, demo, sessions):
    response = twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + "b" * 32, "From": "+12125550177",
                                                   "To": "+12125550999", "Body": "hello"})
    assert response.status_code == 200
    with sessions() as session:
        stored = session.scalars(select(Message)).one()
    assert (stored.clinic_id, stored.direction) == (None, "inbound")
    assert ("ignored", {"reason": "no clinic has this number"}) in events(sessions, stored.id)


def test_a_repeated_inbound_webhook_is_acted_on_once(twilio, demo, sessions):
    data = {"MessageSid": "SM" + "c" * 32, "From": "+12125550177", "To": CLINIC, "Body": "hello"}
    twilio.post("/twilio/sms/inbound", data)
    twilio.post("/twilio/sms/inbound", data)
    with sessions() as session:
        assert session.scalar(select(Message.id).where(Message.direction == "inbound")) is not None
        assert len(session.scalars(select(Message).where(Message.direction == "outbound")).all()) == 1


# What the review of the first slice found: each of these failed before its fix.

def inbound(twilio, body, sid, frm="+12125550143"):
    """A signed inbound text; `sid` tells texts apart (a letter: the test's own names)."""
    return twilio.post("/twilio/sms/inbound", {"MessageSid": f"SM{ord(sid):032x}", "From": frm, "To": CLINIC,
                                               "Body": body})


def remind(app, sessions, appointment_id):
    """Open a reminder conversation for an appointment, as an SMS touch's job does."""
    from ivr.models import Touch, utcnow

    with sessions.begin() as session:
        touch = Touch(appointment_id=appointment_id, step=f"sms-{appointment_id}", channel="sms",
                      flow="text_reminder", due_at=utcnow(), status="completed")
        session.add(touch)
        session.flush()
        return texts.start_reminder(session, touch.id, CLINIC)


def status_of(sessions, appointment_id):
    from ivr.models import Appointment

    with sessions() as session:
        return session.get(Appointment, appointment_id).status


def open_tasks(sessions):
    from ivr.models import Task

    with sessions() as session:
        return [(t.kind, t.patient_id, t.phone) for t in session.scalars(select(Task).where(Task.status == "open"))]


def test_a_reply_from_a_phone_two_patients_share_is_not_applied_to_either(app, twilio, demo, sessions):
    """Jane and Robert share a phone and each got a reminder: "C" cannot say whose visit."""
    from ivr.models import Appointment

    with sessions.begin() as session:
        robert = session.scalars(select(Patient).where(Patient.first_name == "Robert")).one()
        robert.phone = demo.patient_phone
        robert_visit = session.scalars(select(Appointment).where(Appointment.patient_id == robert.id)).one().id
    remind(app, sessions, demo.appointment_id)
    remind(app, sessions, robert_visit)
    inbound(twilio, "C", "d")
    assert (status_of(sessions, demo.appointment_id), status_of(sessions, robert_visit)) == ("booked", "booked")
    assert open_tasks(sessions) == [("unmatched_text", None, demo.patient_phone)]


def test_a_1_at_the_cancel_check_does_not_cancel(app, twilio, demo, sessions):
    remind(app, sessions, demo.appointment_id)
    inbound(twilio, "3", "e")  # cancel: asked again
    inbound(twilio, "1", "f")  # a patient who learned that 1 confirms
    assert status_of(sessions, demo.appointment_id) == "booked"
    inbound(twilio, "X", "g")
    assert status_of(sessions, demo.appointment_id) == "cancelled"


def test_a_reply_after_the_visit_began_changes_nothing(app, twilio, demo, sessions):
    import datetime as dt

    from ivr.models import Appointment, utcnow

    remind(app, sessions, demo.appointment_id)
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).starts_at = utcnow() - dt.timedelta(minutes=5)
    inbound(twilio, "C", "h")
    assert status_of(sessions, demo.appointment_id) == "booked"
    assert [k for k, _p, _n in open_tasks(sessions)] == ["unmatched_text"]


@pytest.mark.parametrize("word", ["CANCEL", "yes"])
def test_a_carrier_word_sent_to_a_waiting_reminder_reaches_a_person(app, twilio, demo, sessions, word):
    """Patients answer "cancel" or "yes" whatever the text asked: the carrier acts on the word,
    and a person learns what they may have meant."""
    remind(app, sessions, demo.appointment_id)
    inbound(twilio, word, "i")
    assert status_of(sessions, demo.appointment_id) == "booked"
    assert [k for k, _p, _n in open_tasks(sessions)] == ["unmatched_text"]


def test_what_an_opted_out_patient_writes_still_reaches_a_person_without_a_reply(app, twilio, demo, sessions):
    inbound(twilio, "STOP", "j")
    inbound(twilio, "I need my refill, please call me", "k")
    assert [k for k, _p, _n in open_tasks(sessions)] == ["unmatched_text"]
    with sessions() as session:
        assert session.scalars(select(Message).where(Message.direction == "outbound")).all() == []


def test_start_lifts_a_carrier_opt_out_and_the_opt_in_is_recorded(app, twilio, demo, sessions, messenger):
    message_id = queue(sessions, demo.patient_phone)
    messenger.fail_with = PermanentSendError("carrier refused the text: HTTP 400, code 21610", code=21610)
    with app.app_context():
        send_text(message_id)
    inbound(twilio, "START", "l")
    with sessions() as session:
        patient = session.scalars(select(Patient).where(Patient.phone == demo.patient_phone)).one()
        assert (patient.opted_out_at, patient.consent_source) == (None, "sms opt-in")
        assert not texts.opted_out(session, 1, demo.patient_phone)
        start = session.scalars(select(Message).where(Message.direction == "inbound")).one()
    (lifted,) = [d for k, d in events(sessions, start.id) if k == "opted_in"]
    assert [o["source"] for o in lifted["lifted"]] == ["carrier 21610"]


def test_a_number_that_opted_out_by_text_is_not_called_either(app, twilio, demo, sessions, dialer):
    from outbound.jobs import place_touch_call

    inbound(twilio, "STOP", "m")
    with sessions.begin() as session:  # the number is given to another patient afterwards
        session.execute(Patient.__table__.update().values(opted_out_at=None, opted_out_source=None))
    with app.app_context():
        place_touch_call(demo.touch_id)
    assert dialer.requests == []


def test_a_reminder_a_name_or_date_would_take_past_two_segments_goes_in_its_short_form(app, demo, sessions):
    """María's visit on a Saturday in Spanish: one letter outside GSM-7 makes the whole text
    UCS-2, and it would cost three segments."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.models import Appointment

    with sessions.begin() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        appointment.patient.first_name, appointment.patient.language = "María Guadalupe", "es"
        appointment.starts_at = dt.datetime(2027, 8, 7, 11, 45, tzinfo=ZoneInfo("America/New_York"))  # a Saturday
    (message_id,) = remind(app, sessions, demo.appointment_id)
    sent = message(sessions, message_id)
    assert sent.segments <= 2 and "María" not in sent.body and "Responda 1" in sent.body


def test_two_copies_of_one_inbound_text_at_the_same_moment_are_acted_on_once(app, twilio, demo, sessions):
    import threading

    from tests.support import TwilioClient

    barrier = threading.Barrier(2)

    def send():
        client = TwilioClient(app.test_client())
        barrier.wait()
        inbound(client, "hello", "n", frm="+12125550177")

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(open_tasks(sessions)) == 1
    with sessions() as session:
        assert len(session.scalars(select(Message).where(Message.direction == "outbound")).all()) == 1


def test_automatic_answers_go_once_a_day_so_two_auto_responders_do_not_loop(app, twilio, demo, sessions):
    for n, char in enumerate("opqr"):
        inbound(twilio, f"auto-reply number {n}", char, frm="+12125550177")
    inbound(twilio, "help", "s", frm="+12125550177")
    inbound(twilio, "help", "t", frm="+12125550177")
    with sessions() as session:
        kinds = [m.kind for m in session.scalars(select(Message).where(Message.direction == "outbound"))]
    assert sorted(kinds) == ["help", "passed_to_staff"]
    assert len(open_tasks(sessions)) == 1  # one task holds all four texts


def test_a_parameter_twilio_adds_to_texts_is_logged_not_refused(twilio, demo, sessions):
    response = twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + "e" * 32, "From": "+12125550177",
                                                   "To": CLINIC, "Body": "hi", "SomethingNew": "1"})
    assert response.status_code == 200


@pytest.mark.parametrize("kind,age_hours,sent", [("reminder", 0.5, True), ("reminder", 2, False),
                                                 ("reply", 1, True), ("reply", 3, False)])
def test_a_text_held_back_for_hours_is_not_sent_late(app, demo, sessions, messenger, kind, age_hours, sent):
    """After Redis lost its work or workers were down, reconcile queues what was planned: a
    reminder or an answer that would arrive hours late (at night, after the visit) stays unsent."""
    import datetime as dt

    from ivr.models import utcnow

    message_id = queue(sessions, demo.patient_phone, kind=kind)
    with sessions.begin() as session:
        session.get(Message, message_id).created_at = utcnow() - dt.timedelta(hours=age_hours)
    with app.app_context():
        send_text(message_id)
    assert len(messenger.requests) == (1 if sent else 0)
    if not sent:
        assert message(sessions, message_id).reason == "too late to send"
