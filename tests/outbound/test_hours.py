"""Calling hours in the patient's own time zone, and rebuilding the queue from the database."""

import datetime as dt

import pytest
from sqlalchemy import update

from ivr.models import Clinic, Touch, utcnow
from outbound.hours import next_call_time
from outbound.jobs import place_touch_call
from outbound.queueing import enqueue_touch, job_id_for_touch, outbound_queue, reconcile
from outbound import planning

UTC = dt.timezone.utc
NINE, EIGHT_PM = dt.time(9), dt.time(20)


@pytest.mark.parametrize("now,expected", [
    # New York is UTC-5 in January: 14:00 UTC is 9:00 local
    (dt.datetime(2026, 1, 5, 15, 0, tzinfo=UTC), dt.datetime(2026, 1, 5, 15, 0, tzinfo=UTC)),   # 10:00 local
    (dt.datetime(2026, 1, 5, 12, 0, tzinfo=UTC), dt.datetime(2026, 1, 5, 14, 0, tzinfo=UTC)),   # 7:00 -> 9:00
    (dt.datetime(2026, 1, 6, 1, 30, tzinfo=UTC), dt.datetime(2026, 1, 6, 14, 0, tzinfo=UTC)),   # 20:30 -> next 9:00
    (dt.datetime(2026, 1, 5, 14, 0, tzinfo=UTC), dt.datetime(2026, 1, 5, 14, 0, tzinfo=UTC)),   # 9:00 sharp
    (dt.datetime(2026, 1, 6, 1, 0, tzinfo=UTC), dt.datetime(2026, 1, 6, 14, 0, tzinfo=UTC)),    # 20:00 is closed
    # summer time: UTC-4, so 9:00 local is 13:00 UTC
    (dt.datetime(2026, 7, 6, 11, 0, tzinfo=UTC), dt.datetime(2026, 7, 6, 13, 0, tzinfo=UTC)),
])
def test_next_call_time_in_new_york(now, expected):
    assert next_call_time(now, "America/New_York", NINE, EIGHT_PM) == expected


def test_the_patients_own_time_zone_counts():
    now = dt.datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York, 7:00 in Los Angeles
    assert next_call_time(now, "America/Los_Angeles", NINE, EIGHT_PM) == dt.datetime(2026, 1, 5, 17, 0, tzinfo=UTC)


def closed_now(sessions):
    """Give the demo clinic a calling window of one hour that starts two hours from now."""
    from zoneinfo import ZoneInfo

    hour = (utcnow().astimezone(ZoneInfo("America/New_York")).hour + 2) % 24
    until = dt.time(hour + 1) if hour < 23 else dt.time(23, 59, 59)
    with sessions.begin() as session:
        session.execute(update(Clinic).values(calls_from=dt.time(hour), calls_until=until))


def test_no_call_outside_calling_hours(app, dialer, demo, sessions):
    closed_now(sessions)
    with app.app_context():
        assert place_touch_call(demo.touch_id) is None
    assert dialer.requests == []
    with sessions() as session:
        touch = session.get(Touch, demo.touch_id)
        assert (touch.status, touch.last_error) == ("planned", "outside calling hours")
        assert touch.due_at > utcnow()


@pytest.mark.parametrize("step,test_call,carrier,outcome", [
    ("test-call-1", False, "sandbox", "planned"),  # a name is only a name: this one waits for hours
    ("sandbox-check", True, "sandbox", "placed"),  # marked as a test call, on the sandbox: rings now
    ("sandbox-check", True, "twilio", "skipped"),  # a test call never rings a real phone
])
def test_only_a_sandbox_test_call_rings_outside_calling_hours(database_url, redis, dialer, tmp_path,
                                                             step, test_call, carrier, outcome):
    from ivr import create_app
    from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL, seed_demo_touch

    app = create_app({"ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                      "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": str(tmp_path), "REDIS": redis,
                      "DIALER": dialer, "CARRIER": carrier})
    sessions = app.extensions["ivr"].sessions
    demo = seed_demo_touch(sessions)
    closed_now(sessions)
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(step=step, test_call=test_call))
    with app.app_context():
        place_touch_call(demo.touch_id)
    assert len(dialer.requests) == (1 if outcome == "placed" else 0)
    with sessions() as session:
        touch = session.get(Touch, demo.touch_id)
    assert touch.status == outcome
    if outcome == "skipped":
        assert touch.last_error == "a test call, and this server's carrier is not the sandbox"
    app.extensions["ivr"].engine.dispose()


def test_schedule_waits_for_calling_hours(runner, sessions, redis):
    runner.invoke(args=["seed-demo"])  # four visits (one by text), and a refill due in three days
    closed_now(sessions)
    result = runner.invoke(args=["reminders", "schedule", "--within-hours", "72"])
    assert result.exception is None, repr(result.exception)
    # The window opens in two hours, past the worker's one-hour horizon: nothing is in Redis yet.
    assert result.output.strip() == ("planned 5 new contact(s); queued 0; 0 already queued; "
                                     "5 due later, queued by the worker as they come due")
    queue = outbound_queue(redis)
    assert queue.count == 0 and len(queue.scheduled_job_registry) == 0
    # An hour later the worker's reconcile finds them within its horizon and schedules each for
    # the window's opening.
    from outbound.jobs import reconcile_horizon
    from outbound.reconciler import reconcile_all

    app = runner.app
    with app.app_context():
        services = app.extensions["ivr"]
        report = reconcile_all(services, utcnow() + dt.timedelta(hours=1, minutes=5),
                               reconcile_horizon(services.settings))
    assert (report.queued, queue.count, len(queue.scheduled_job_registry)) == (5, 0, 5)


def test_reconcile_rebuilds_the_queue_after_redis_lost_everything(runner, sessions, redis):
    runner.invoke(args=["seed-demo"])
    runner.invoke(args=["reminders", "schedule", "--within-hours", "72"])
    redis.flushall()
    assert runner.invoke(args=["reminders", "reconcile"]).output.strip() == \
        "5 planned call(s): 5 queued again, 0 already queued"
    assert outbound_queue(redis).count == 5
    assert runner.invoke(args=["reminders", "reconcile"]).output.strip() == \
        "5 planned call(s): 0 queued again, 5 already queued"


def test_reconcile_requeues_a_touch_whose_job_finished_without_dialling(app, redis, dialer, demo, sessions):
    from outbound.worker import AppSimpleWorker

    queue = outbound_queue(redis)
    closed_now(sessions)
    enqueue_touch(queue, demo.touch_id)  # queued for now, but the clinic is closed
    AppSimpleWorker([queue], connection=redis, app=app).work(burst=True)
    assert dialer.requests == []
    with sessions() as session:
        planned = list(planning.touches_to_queue(session))
    assert [t for t, _ in planned] == [demo.touch_id]
    assert reconcile(queue, planned) == (1, 0, 1)  # queued for the window's opening
    from rq.registry import ScheduledJobRegistry
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [job_id_for_touch(demo.touch_id)]


def test_a_touch_left_dialing_by_a_dead_worker_becomes_uncertain_not_redialled(runner, sessions, demo, redis):
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id)
                        .values(status="dialing", updated_at=utcnow() - dt.timedelta(minutes=30)))
    result = runner.invoke(args=["reminders", "reconcile"])
    assert result.output.strip() == ("0 planned call(s): 0 queued again, 0 already queued; "
                                     "1 left uncertain after a worker stopped while dialling")
    with sessions() as session:
        touch = session.get(Touch, demo.touch_id)
        assert (touch.status, touch.last_error) == ("uncertain", "worker stopped while dialling")
    assert outbound_queue(redis).count == 0


def test_a_touch_dialing_right_now_is_left_alone(runner, sessions, demo):
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="dialing"))
    runner.invoke(args=["reminders", "reconcile"])
    with sessions() as session:
        assert session.get(Touch, demo.touch_id).status == "dialing"
