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
