"""Events reach the clinic's receiver over real HTTP, signed per Standard Webhooks (checked with
the library's own verifier), retried on failure, and nothing is lost while it is down."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ivr import calls, events
from ivr.messaging.texts import record_opt_out
from ivr.models import (Call, Escalation, Patient, Prescription, WebhookAttempt, WebhookDelivery, WebhookEndpoint,
                        utcnow)
from outbound import event_delivery
from outbound.queueing import outbound_queue
from outbound.worker import AppSimpleWorker
from tests.ivr.test_webhooks import answer, press
from tests.support import call_sid


class Receiver:
    """The clinic's system: an HTTP server that records each request and answers the next code."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.codes: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.codes.pop(0) if receiver.codes else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def register(runner, url, *events_wanted) -> tuple[int, str]:
    result = runner.invoke(args=["webhooks", "add", "1", url, *[f"--event={e}" for e in events_wanted]])
    assert result.exit_code == 0, result.output
    header, secret = result.stdout.splitlines()[:2]
    return int(header.split()[2]), secret


def deliveries(sessions, event_type=None):
    with sessions() as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if event_type:
            query = query.where(WebhookDelivery.event_type == event_type)
        return session.scalars(query).all()


def attempts(sessions, delivery_id):
    with sessions() as session:
        return [(a.status_code, a.error) for a in session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id))]


def due_now(sessions, delivery_id):
    """Time passes until the delivery's next attempt is due."""
    with sessions.begin() as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(next_attempt_at=utcnow()))


def test_a_patient_confirming_on_a_call_reaches_the_receiver_signed(app, runner, twilio, demo, sessions, redis,
                                                                   receiver):
    endpoint_id, secret = register(runner, receiver.url)
    assert secret.startswith("whsec_")
    answer(twilio, demo)
    press(twilio, "1")
    press(twilio, "1")  # confirm
    (delivery,) = deliveries(sessions)
    assert (delivery.event_type, delivery.status, delivery.endpoint_id) == ("appointment.confirmed", "pending",
                                                                            endpoint_id)
    queue = outbound_queue(redis)
    assert queue.fetch_job(event_delivery.job_id_for_delivery(delivery.id, 0)) is not None  # queued at commit
    AppSimpleWorker([queue], connection=redis, app=app).work(burst=True)
    ((headers, body),) = receiver.requests
    event = Webhook(secret).verify(body, headers)  # the library's own verifier
    assert headers["webhook-id"] == delivery.message_id
    assert event["type"] == "appointment.confirmed"
    assert event["data"] | {"starts_at": None} == {
        "appointment_id": demo.appointment_id, "appointment": None, "patient_id": event["data"]["patient_id"],
        "patient": None, "status": "confirmed", "channel": "voice", "starts_at": None}
    assert b"Jane" not in body and demo.patient_phone.encode() not in body
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)  # another secret does not verify
    assert deliveries(sessions)[0].status == "delivered" and attempts(sessions, delivery.id) == [(204, None)]


def test_a_receiver_that_fails_then_recovers_gets_the_event_once_taken(app, runner, sessions, demo, receiver):
    _, secret = register(runner, receiver.url, "patient.opted_out")
    with sessions.begin() as session:
        record_opt_out(session, 1, demo.patient_phone, "sms keyword", None)
    (delivery,) = deliveries(sessions)
    receiver.codes = [500, 503]
    with app.app_context():
        assert event_delivery.deliver(delivery.id).startswith("attempt 1 failed")
        assert event_delivery.deliver(delivery.id) == "not due"  # its back-off has not passed
        due_now(sessions, delivery.id)
        assert event_delivery.deliver(delivery.id).startswith("attempt 2 failed")
        due_now(sessions, delivery.id)
        assert event_delivery.deliver(delivery.id) == "delivered"
        assert event_delivery.deliver(delivery.id) == "not pending"
    assert attempts(sessions, delivery.id) == [(500, "HTTP 500"), (503, "HTTP 503"), (204, None)]
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1  # one message, three tries
    for headers, body in receiver.requests:
        assert Webhook(secret).verify(body, headers)["data"]["channel"] == "sms"


def test_a_receiver_down_for_hours_loses_nothing_and_a_failed_one_can_be_replayed(app, runner, sessions, demo,
                                                                                  receiver, redis):
    register(runner, "http://127.0.0.1:9/nobody-listens")  # the discard port: refused
    with sessions.begin() as session:
        record_opt_out(session, 1, demo.patient_phone, "sms keyword", None)
    (delivery,) = deliveries(sessions)
    waited, scheduled = dt.timedelta(), outbound_queue(redis).scheduled_job_registry
    with app.app_context():
        for attempt in range(len(event_delivery.BACK_OFF) + 1):
            due_now(sessions, delivery.id)
            before = utcnow()
            event_delivery.deliver(delivery.id)
            if attempt < len(event_delivery.BACK_OFF):
                waited += event_delivery.BACK_OFF[attempt]
                pending = deliveries(sessions)[0]
                assert pending.status == "pending"
                # The next attempt waits its back-off, and its job is scheduled for then.
                assert before + event_delivery.BACK_OFF[attempt] <= pending.next_attempt_at <= (
                    utcnow() + event_delivery.BACK_OFF[attempt])
                job_id = event_delivery.job_id_for_delivery(delivery.id, attempt + 1)
                assert job_id in scheduled.get_job_ids()
                assert abs(scheduled.get_scheduled_time(job_id) - pending.next_attempt_at) < dt.timedelta(seconds=1)
    assert waited > dt.timedelta(hours=24)  # still pending a day after the first try
    assert deliveries(sessions)[0].status == "failed"
    assert attempts(sessions, delivery.id) == [(None, "ConnectionError")] * (len(event_delivery.BACK_OFF) + 1)
    # The receiver is back: the clinic points the endpoint at it and replays what failed.
    with sessions.begin() as session:
        session.execute(update(WebhookEndpoint).values(url=receiver.url))
    assert runner.invoke(args=["webhooks", "replay", "--failed", "1"]).output.strip() == (
        "1 delivery(ies) queued to be sent again")
    AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)
    assert deliveries(sessions)[0].status == "delivered" and len(receiver.requests) == 1


def test_deliveries_redis_lost_are_queued_again_by_the_reconciler(app, runner, sessions, demo, redis, receiver):
    from outbound.reconciler import reconcile_all

    register(runner, receiver.url)
    with sessions.begin() as session:
        record_opt_out(session, 1, demo.patient_phone, "sms keyword", None)
    redis.flushall()  # Redis restarted empty
    with app.app_context():
        report = reconcile_all(app.extensions["ivr"], utcnow())
    assert report.webhooks == 1 and "1 webhook delivery(ies) queued again" in report.summary()
    AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)
    assert deliveries(sessions)[0].status == "delivered"


def test_each_event_is_written_with_the_change_and_only_for_endpoints_that_want_it(app, runner, sessions, demo):
    register(runner, "http://127.0.0.1:9/refills", "prescription.refill_requested")
    register(runner, "http://127.0.0.1:9/everything")
    with sessions.begin() as session:
        patient = session.scalar(select(Patient).where(Patient.phone == demo.patient_phone))
        prescription = session.scalar(select(Prescription).where(Prescription.patient_id == patient.id))
        events.task_opened(session, 1, "refill_request", 7, appointment_id=None, prescription_id=prescription.id,
                           channel="voice")
        events.task_opened(session, 1, "call_back", 8, appointment_id=None, prescription_id=None, channel="voice")
        events.appointment_changed(session, 1, demo.appointment_id, "cancelled", "sms")
        events.task_opened(session, 1, "rebook_request", 9, appointment_id=demo.appointment_id, prescription_id=None,
                           channel="sms")
        sid = call_sid()
        call = Call(call_sid=sid, direction="inbound", flow="inbound", clinic_id=1, status="in-progress")
        session.add(call)
        session.flush()
        session.add(Escalation(call_id=call.id, clinic_id=1, reason="asked", verified=True, started_at=utcnow()))
        session.flush()
        assert calls.apply_status(session, sid, "completed", None)
    written = [(d.endpoint_id, d.event_type) for d in deliveries(sessions)]
    assert written == [(1, "prescription.refill_requested"), (2, "prescription.refill_requested"),
                       (2, "appointment.cancelled"), (2, "appointment.no_show_recovered"), (2, "escalation.finished")]
    finished = json.loads(deliveries(sessions, "escalation.finished")[0].payload)["data"]
    assert (finished["reason"], finished["outcome"], finished["verified"]) == ("asked", "abandoned", True)
    refill = json.loads(deliveries(sessions)[0].payload)["data"]
    assert (refill["prescription_id"], refill["task_id"], refill["channel"]) == (prescription.id, 7, "voice")
    assert "metformin" not in deliveries(sessions)[0].payload  # ids only


def test_a_rolled_back_change_sends_nothing(app, runner, sessions, demo, redis):
    register(runner, "http://127.0.0.1:9/x")
    with pytest.raises(RuntimeError):
        with sessions.begin() as session:
            events.appointment_changed(session, 1, demo.appointment_id, "confirmed", "voice")
            raise RuntimeError("the turn failed")
    assert deliveries(sessions) == [] and outbound_queue(redis).count == 0


def test_webhook_mistakes_get_one_line(runner, sessions, demo):
    for args, message in ((["add", "1", "ftp://x/y"], "give an http(s) URL"),
                          (["add", "1", "https://user:pw@x/y"], "no user or password"),
                          (["add", "999999", "https://x/y"], "no clinic with id 999999"),
                          (["add", "1", "https://x/y", "--event", "nonsense"], "'nonsense' is not one of"),
                          (["disable", "999999"], "no webhook endpoint with id 999999"),
                          (["replay"], "name deliveries, or --failed ENDPOINT"),
                          (["replay", "999999"], "no delivery with id 999999")):
        result = runner.invoke(args=["webhooks", *args])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output
    register(runner, "https://clinic.example/events")
    assert "0 delivered, 0 waiting, 0 failed" in runner.invoke(args=["webhooks", "list"]).output
    assert "whsec_" not in runner.invoke(args=["webhooks", "list"]).output


def test_a_savepoint_neither_sends_early_nor_loses_the_event(app, runner, sessions, demo, redis):
    from sqlalchemy.exc import IntegrityError

    register(runner, "http://127.0.0.1:9/x")
    queue = outbound_queue(redis)
    with app.app_context():
        with sessions.begin() as session:
            (delivery_id,) = events.emit(session, 1, "appointment.cancelled", {"appointment_id": demo.appointment_id})
            with session.begin_nested():
                pass  # released: the transaction goes on
            assert queue.fetch_job(event_delivery.job_id_for_delivery(delivery_id, 0)) is None
            try:
                with session.begin_nested():
                    raise IntegrityError("INSERT", {}, Exception("a duplicate, as record_inbound meets"))
            except IntegrityError:
                pass
        assert queue.fetch_job(event_delivery.job_id_for_delivery(delivery_id, 0)) is not None


def test_confirming_a_confirmed_visit_tells_nobody_again(runner, twilio, demo, sessions):
    from ivr.models import Appointment

    register(runner, "http://127.0.0.1:9/x")
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).status = "confirmed"
    answer(twilio, demo)
    press(twilio, "1")
    press(twilio, "1")
    assert deliveries(sessions) == []


def test_a_waiting_delivery_is_not_replayed_and_a_disabled_endpoints_are_left_alone(app, runner, sessions, demo,
                                                                                   redis):
    from outbound.reconciler import reconcile_all

    register(runner, "http://127.0.0.1:9/x")
    with sessions.begin() as session:
        record_opt_out(session, 1, demo.patient_phone, "sms keyword", None)
    (delivery,) = deliveries(sessions)
    refused = runner.invoke(args=["webhooks", "replay", str(delivery.id)])
    assert refused.exit_code == 1 and f"delivery {delivery.id} is waiting for its next attempt already" in refused.output
    assert runner.invoke(args=["webhooks", "disable", "1"]).exit_code == 0
    redis.flushall()
    with app.app_context():
        assert reconcile_all(app.extensions["ivr"], utcnow()).webhooks == 0
    assert "no webhook endpoint with id 99" in runner.invoke(args=["webhooks", "replay", "--failed", "99"]).output
