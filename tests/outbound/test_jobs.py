"""Placing reminder calls through RQ with real Redis and real burst workers."""

import datetime as dt

import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from ivr.errors import DialError, PermanentDialError
from ivr.models import Appointment, Call, Touch, utcnow
from ivr.telephony import CallRequest
from outbound.jobs import place_touch_call
from outbound.queueing import enqueue_touch, job_id_for_touch, outbound_queue
from outbound.worker import AppSimpleWorker, AppWorker
from tests.support import PUBLIC_BASE_URL, seed_demo_touch


def run_burst(app, queue, worker_class=AppSimpleWorker):
    worker = worker_class([queue], connection=queue.connection, app=app)
    worker.work(burst=True)


def touch_row(sessions, touch_id):
    with sessions() as session:
        return session.get(Touch, touch_id)


def test_touch_enqueued_twice_is_queued_and_dialled_once(app, redis, dialer, demo, sessions):
    queue = outbound_queue(redis)
    assert enqueue_touch(queue, demo.touch_id) is True
    assert enqueue_touch(queue, demo.touch_id) is False
    assert queue.count == 1 and queue.job_ids == [job_id_for_touch(demo.touch_id)]
    run_burst(app, queue)
    assert dialer.requests == [CallRequest(
        to=demo.patient_phone, from_="+12125550100",
        url=f"{PUBLIC_BASE_URL}/twilio/voice/outbound/{demo.touch_id}",
        status_callback=f"{PUBLIC_BASE_URL}/twilio/status/outbound/{demo.touch_id}/1",
        fallback_url=f"{PUBLIC_BASE_URL}/twilio/voice/fallback")]
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts, touch.call_sid) == ("placed", 1, "CA" + "0" * 31 + "1")
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.call_sid, call.status, call.touch_id, call.flow) == (
            touch.call_sid, "queued", demo.touch_id, "reminder")
    # Once done, the job's result stays, so the same id still cannot be queued again.
    assert enqueue_touch(queue, demo.touch_id) is False
    assert Job.fetch(job_id_for_touch(demo.touch_id), connection=redis).return_value() == touch.call_sid


def test_a_job_that_runs_twice_dials_once(app, dialer, demo):
    with app.app_context():
        first = place_touch_call(demo.touch_id)
        second = place_touch_call(demo.touch_id)
    assert first is not None and second is None
    assert len(dialer.requests) == 1


@pytest.mark.parametrize("change,reason", [
    (lambda a: setattr(a.patient, "opted_out_at", utcnow()), "patient opted out"),
    (lambda a: setattr(a, "status", "cancelled"), "appointment is cancelled"),
])
def test_opted_out_or_cancelled_is_skipped_not_dialled(app, dialer, demo, sessions, change, reason):
    with sessions.begin() as session:
        change(session.get(Appointment, demo.appointment_id))
    with app.app_context():
        assert place_touch_call(demo.touch_id) is None
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.last_error) == ("skipped", reason)
    assert dialer.requests == []


def test_carrier_refusal_fails_the_touch_without_retry(app, redis, dialer, demo, sessions):
    dialer.fail_with = PermanentDialError("carrier refused the call: HTTP 400, code 21211")
    queue = outbound_queue(redis)
    enqueue_touch(queue, demo.touch_id)
    run_burst(app, queue)
    job = Job.fetch(job_id_for_touch(demo.touch_id), connection=redis)
    assert job.get_status() == JobStatus.FINISHED
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.last_error) == ("failed", "carrier refused the call: HTTP 400, code 21211")


def test_carrier_outage_releases_the_touch_and_schedules_a_retry(app, redis, dialer, demo, sessions):
    dialer.fail_with = DialError("carrier unreachable: ConnectionError")
    queue = outbound_queue(redis)
    enqueue_touch(queue, demo.touch_id)
    run_burst(app, queue)
    job = Job.fetch(job_id_for_touch(demo.touch_id), connection=redis)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == 2
    assert job.id in ScheduledJobRegistry(queue=queue).get_job_ids()
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts) == ("planned", 1)
    assert "carrier unreachable" in touch.last_error
    # The retry claims the touch again and dials.
    dialer.fail_with = None
    with app.app_context():
        assert place_touch_call(demo.touch_id) is not None
    assert touch_row(sessions, demo.touch_id).attempts == 2


def test_a_touch_due_later_waits_in_the_scheduler(app, redis, dialer, demo):
    queue = outbound_queue(redis)
    enqueue_touch(queue, demo.touch_id, due_at=utcnow() + dt.timedelta(hours=3))
    assert queue.count == 0
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [job_id_for_touch(demo.touch_id)]
    run_burst(app, queue)
    assert dialer.requests == []


@pytest.fixture
def live_sandbox(sandbox_app_factory):
    """The app served over real HTTP with the sandbox carrier, its REST API at /sandbox."""
    from ivr.sandbox.calling import serve

    with serve(sandbox_app_factory) as (app, base):
        yield app, base


def test_forking_worker_places_the_call_with_the_real_twilio_client_over_http(live_sandbox, redis):
    app, base = live_sandbox
    demo = seed_demo_touch(app.extensions["ivr"].sessions)
    queue = outbound_queue(redis)
    enqueue_touch(queue, demo.touch_id)
    run_burst(app, queue, worker_class=AppWorker)  # the forked work horse renders with espeak-ng
    from ivr.sandbox.carrier import carrier
    with app.app_context():
        calls = carrier().store.calls()
    assert len(calls) == 1
    placed = calls[0]
    assert (placed["to"], placed["from"], placed["url"], placed["status_callback"]) == (
        demo.patient_phone, "+12125550100", f"{base}/twilio/voice/outbound/{demo.touch_id}",
        f"{base}/twilio/status/outbound/{demo.touch_id}/1")
    assert placed["status_callback_event"] == ["initiated", "ringing", "answered", "completed"]
    assert placed["machine_detection"] == "DetectMessageEnd"
    # The sandbox then plays the call (the phone has no script: it answers and stays silent).
    from ivr.sandbox.calling import wait_for_final_status, wait_for_transcript
    with app.app_context():
        transcript = wait_for_transcript(carrier().store, placed["sid"], timeout=20)
    assert transcript["status"] == "completed"
    assert transcript["turns"][0]["prompts"][0]["seconds"] > 1  # played from the horse's render
    wait_for_final_status(app.extensions["ivr"].sessions, placed["sid"])
    touch = touch_row(app.extensions["ivr"].sessions, demo.touch_id)
    assert (touch.status, touch.call_sid) == ("completed", placed["sid"])


def test_sandbox_rest_refuses_bad_credentials_and_numbers_like_twilio(live_sandbox):
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    from ivr.telephony import RedirectingHttpClient

    app, base = live_sandbox
    settings = app.extensions["ivr"].settings
    wrong = Client(settings.twilio_account_sid, "wrong-token",
                   http_client=RedirectingHttpClient(f"{base}/sandbox"))
    with pytest.raises(TwilioRestException) as refused:
        wrong.calls.create(to="+12125550143", from_="+12125550100", url=f"{base}/x")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    right = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                   http_client=RedirectingHttpClient(f"{base}/sandbox"))
    with pytest.raises(TwilioRestException) as bad_number:
        right.calls.create(to="12345", from_="+12125550100", url=f"{base}/x")
    assert (bad_number.value.status, bad_number.value.code) == (400, 21211)


def test_an_uncertain_dial_is_never_retried(app, redis, dialer, demo, sessions):
    from ivr.errors import UncertainDialError
    dialer.fail_with = UncertainDialError("carrier did not answer: ReadTimeout")
    queue = outbound_queue(redis)
    enqueue_touch(queue, demo.touch_id)
    run_burst(app, queue)
    job = Job.fetch(job_id_for_touch(demo.touch_id), connection=redis)
    assert job.get_status() == JobStatus.FINISHED
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.last_error) == ("uncertain", "carrier did not answer: ReadTimeout")


def test_a_touch_closed_by_an_early_callback_stays_closed(app, demo, sessions):
    """The carrier's 'busy' can land before the job records the SID; the job must not reopen it."""
    from ivr import calls

    class CallbackFirstDialer:
        def place_call(self, request):
            with sessions.begin() as session:
                calls.apply_status(session, "CA" + "f" * 32, "busy", None, touch_id=demo.touch_id)
            return "CA" + "f" * 32

    app.extensions["ivr"].dialer_override = CallbackFirstDialer()
    with app.app_context():
        assert place_touch_call(demo.touch_id) == "CA" + "f" * 32
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.call_sid) == ("unreached", "CA" + "f" * 32)
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.status, call.from_number, call.to_number) == ("busy", "+12125550100", demo.patient_phone)


def test_the_last_try_marks_the_touch_failed(app, dialer, demo, sessions):
    """Outside RQ (or with no retries left) nothing will try again: the touch must not sit planned."""
    dialer.fail_with = DialError("carrier unreachable: ConnectionError")
    with app.app_context(), pytest.raises(DialError):
        place_touch_call(demo.touch_id)
    assert touch_row(sessions, demo.touch_id).status == "failed"


def test_no_call_about_an_appointment_that_has_started(app, dialer, demo, sessions):
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).starts_at = utcnow() - dt.timedelta(minutes=5)
    with app.app_context():
        assert place_touch_call(demo.touch_id) is None
    assert touch_row(sessions, demo.touch_id).last_error == "appointment has already started"
    assert dialer.requests == []
