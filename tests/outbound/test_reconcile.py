"""Nothing stalls silently: the worker's periodic reconcile (rq's own scheduler, inside the worker)
queues what calling hours held back, settles calls whose final status callback was lost, and
keeps one chain of runs however many workers there are."""

import contextlib
import datetime as dt
import logging
import threading
import time
from zoneinfo import ZoneInfo

from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import select, update

from ivr import calls
from ivr.errors import CarrierError
from ivr.models import Appointment, Call, CallEvent, Clinic, Patient, Touch, utcnow
from ivr.telephony import CallStatus
from outbound.jobs import place_touch_call
from outbound.queueing import enqueue_touch, outbound_queue
from outbound.reconciler import Report, reconcile_all
from outbound.worker import AppSimpleWorker
from tests.support import seed_demo_touch


class ThreadWorker(AppSimpleWorker):
    """A real worker run in a thread: signals belong to the main thread, so rq's handlers are not
    installed (running_workers stops it) and job timeouts use a timer."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


@contextlib.contextmanager
def running_workers(app, redis, count: int, reconcile_every: int):
    """`count` workers with their scheduler, each in a thread, stopped cleanly on exit."""
    queue = outbound_queue(redis)
    workers = [ThreadWorker([queue], connection=redis, app=app, reconcile_every=reconcile_every)
               for _ in range(count)]
    threads = [threading.Thread(target=w.work, kwargs={"with_scheduler": True}, daemon=True)
               for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield workers
    finally:
        for worker in workers:
            worker._stop_requested = True  # what rq's warm shutdown (SIGTERM) sets
        for _ in workers:
            queue.enqueue("time.time")  # wakes a worker waiting for a job, so it sees the request
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a worker did not stop"


def wait_for(condition, timeout: float = 60):
    """Poll until condition() is true; fail the test if it never is."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)


def reconcile_jobs(registry) -> list[str]:
    return [job_id for job_id in registry.get_job_ids() if job_id.startswith("reconcile-")]


def pending_runs(queue) -> list[str]:
    """Reconcile runs waiting for their time or for a worker: one chain has exactly one."""
    return reconcile_jobs(ScheduledJobRegistry(queue=queue)) + [
        job_id for job_id in queue.get_job_ids() if job_id.startswith("reconcile-")]


def touch_row(sessions, touch_id):
    with sessions() as session:
        return session.get(Touch, touch_id)


def open_in(sessions, demo, seconds: int) -> dt.datetime:
    """Give the patient a zone where it is about noon (no midnight in the way) and the clinic a
    window that opens `seconds` from now; returns the moment it opens."""
    now = utcnow()
    offset = (12 - now.hour + 11) % 24 - 11  # hours east of UTC, from -11 to 12
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/ signs are inverted
    opens = (now + dt.timedelta(seconds=seconds)).replace(microsecond=0)
    local = opens.astimezone(ZoneInfo(zone))
    with sessions.begin() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        appointment.patient.timezone = zone
        session.execute(update(Clinic).where(Clinic.id == appointment.patient.clinic_id).values(
            calls_from=local.time(), calls_until=(local + dt.timedelta(hours=1)).time()))
    return opens


def test_a_touch_held_for_calling_hours_is_dialled_when_the_window_opens(app, redis, dialer, demo, sessions):
    """The job runs while the clinic is closed and puts the touch back; nothing is restarted, and
    two workers are running: the call is placed once, when the window opens."""
    opens = open_in(sessions, demo, seconds=6)
    queue = outbound_queue(redis)
    enqueue_touch(queue, demo.touch_id)  # due now, but the clinic is closed for a few seconds
    with running_workers(app, redis, count=2, reconcile_every=1):
        wait_for(lambda: dialer.requests)
        wait_for(lambda: touch_row(sessions, demo.touch_id).status == "placed")
    assert [r.to for r in dialer.requests] == [demo.patient_phone]
    touch = touch_row(sessions, demo.touch_id)
    # Claimed once while closed (put back for the window's opening, which is no attempt), once to dial.
    assert (touch.attempts, touch.due_at, touch.call_sid) == (1, opens, "CA" + "0" * 31 + "1")
    # Two workers, one chain: exactly one next run is waiting.
    assert len(pending_runs(queue)) == 1


def stale_call(app, sessions, demo, status="in-progress", age=dt.timedelta(hours=2)) -> str:
    """Place the demo touch's call, let its callbacks reach `status`, and make it `age` old."""
    with app.app_context():
        sid = place_touch_call(demo.touch_id)
    with sessions.begin() as session:
        calls.apply_status(session, sid, status, "human")
        session.execute(update(Call).where(Call.call_sid == sid).values(created_at=utcnow() - age))
    return sid


def call_row(sessions, sid):
    with sessions() as session:
        return session.scalars(select(Call).where(Call.call_sid == sid)).one()


def test_a_call_whose_completed_callback_never_came_is_settled_by_the_worker(app, redis, dialer, demo, sessions):
    sid = stale_call(app, sessions, demo)
    assert touch_row(sessions, demo.touch_id).status == "placed"
    dialer.statuses[sid] = CallStatus("completed", "human", 42)
    queue = outbound_queue(redis)
    AppSimpleWorker([queue], connection=redis, app=app, reconcile_every=3600).work(burst=True, with_scheduler=True)
    assert dialer.status_requests == [sid]
    call = call_row(sessions, sid)
    assert (call.status, call.outcome) == ("completed", "hung_up") and call.ended_at is not None
    assert touch_row(sessions, demo.touch_id).status == "completed"
    with sessions() as session:
        events = session.scalars(select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)).all()
    assert [(e.kind, e.detail) for e in events[-2:]] == [
        ("status", {"from": "in-progress", "to": "completed"}),
        ("settled", {"source": "carrier", "status": "completed", "duration": 42})]
    # The run scheduled the next one.
    assert len(pending_runs(queue)) == 1


def test_young_and_final_calls_are_not_asked_about(app, dialer, demo, sessions):
    sid = stale_call(app, sessions, demo, age=dt.timedelta(minutes=30))
    with app.app_context():
        assert reconcile_all(app.extensions["ivr"], utcnow()) == Report()
        with sessions.begin() as session:
            session.execute(update(Call).values(created_at=utcnow() - dt.timedelta(days=1)))
            calls.apply_status(session, sid, "busy", None)
        # The ended call is not asked about; only its check for recordings left is queued, once.
        assert reconcile_all(app.extensions["ivr"], utcnow()) == Report(sweeps=1)
        assert reconcile_all(app.extensions["ivr"], utcnow()) == Report()
    assert dialer.status_requests == []


def test_a_carrier_error_is_logged_by_sid_and_asked_again_next_time(app, dialer, demo, sessions, caplog):
    sid = stale_call(app, sessions, demo, status="ringing")
    services = app.extensions["ivr"]
    dialer.statuses[sid] = CarrierError("carrier did not answer: ReadTimeout")
    with app.app_context(), caplog.at_level(logging.WARNING, logger="outbound.reconciler"):
        assert reconcile_all(services, utcnow()) == Report(unsettled=1)
    assert call_row(sessions, sid).status == "ringing"
    assert [r.getMessage() for r in caplog.records] == [
        f"call {sid}: the carrier could not say how it stands (carrier did not answer: ReadTimeout); "
        "asking again next time"]
    assert demo.patient_phone not in caplog.text
    dialer.statuses[sid] = CallStatus("no-answer")
    with app.app_context():
        # Settled, so ended: the same run queues its check for recordings left at the carrier.
        assert reconcile_all(services, utcnow()) == Report(settled=1, sweeps=1)
    assert (call_row(sessions, sid).status, touch_row(sessions, demo.touch_id).status) == ("no-answer", "unreached")


def test_an_uncertain_touch_is_left_for_people(app, redis, dialer, demo, sessions):
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(
            status="uncertain", updated_at=utcnow() - dt.timedelta(days=1)))
    with app.app_context():
        assert reconcile_all(app.extensions["ivr"], utcnow()) == Report()
    assert touch_row(sessions, demo.touch_id).status == "uncertain"
    assert outbound_queue(redis).count == 0 and dialer.status_requests == []


def test_the_chain_survives_a_failing_run(app, redis, dialer, demo, sessions):
    sid = stale_call(app, sessions, demo)
    dialer.statuses[sid] = RuntimeError("a bug while settling")  # not a carrier error: the run fails
    queue = outbound_queue(redis)

    def burst():
        AppSimpleWorker([queue], connection=redis, app=app, reconcile_every=1).work(burst=True, with_scheduler=True)

    burst()
    assert len(reconcile_jobs(FailedJobRegistry(queue=queue))) == 1
    assert len(pending_runs(queue)) == 1  # scheduled before it failed
    dialer.statuses[sid] = CallStatus("completed")

    def settled():
        burst()  # the scheduler moves the next run to the queue once it is due
        return call_row(sessions, sid).status == "completed"

    wait_for(settled)
    assert touch_row(sessions, demo.touch_id).status == "completed"


def test_two_workers_starting_together_start_one_chain(app, redis, demo, sessions):
    queue = outbound_queue(redis)
    workers = [AppSimpleWorker([queue], connection=redis, app=app, reconcile_every=3600) for _ in range(2)]
    for worker in workers:
        worker.work(burst=True, with_scheduler=True)
    # (Two runs if the slot turned between the workers, never two chains.)
    assert len(reconcile_jobs(FinishedJobRegistry(queue=queue))) >= 1
    assert len(pending_runs(queue)) == 1
    # The run did what reconcile does: the demo touch, planned with no job, was queued and dialled.
    assert touch_row(sessions, demo.touch_id).status == "placed"


def test_a_lost_completed_callback_is_settled_through_the_sandbox_carriers_rest(sandbox_app_factory, redis):
    """End to end: the sandbox phone confirms, the carrier loses the completed callback, and
    `ivr reminders reconcile` fetches the call with the real Twilio client over HTTP."""
    from ivr.sandbox import calling, script as scripts
    from ivr.sandbox.carrier import SandboxCarrier

    with calling.serve(sandbox_app_factory) as (app, _base):
        services = app.extensions["ivr"]
        sessions = services.sessions
        demo = seed_demo_touch(sessions)
        store = SandboxCarrier.store_for(services.settings, redis)
        store.set_phone(demo.patient_phone, scripts.parse({"replies": ["1", "1"],
                                                           "callbacks": {"lose": ["completed"]}}))
        queue = outbound_queue(redis)
        enqueue_touch(queue, demo.touch_id)
        AppSimpleWorker([queue], connection=redis, app=app).work(burst=True)
        sid = calling.wait_for_call_sid(sessions, demo.touch_id, timeout=30)
        transcript = calling.wait_for_transcript(store, sid, timeout=30)
        assert transcript["callbacks"][-1] == {"status": "completed", "answer": "lost"}
        assert (call_row(sessions, sid).status, touch_row(sessions, demo.touch_id).status) == (
            "in-progress", "placed")
        with sessions.begin() as session:
            session.execute(update(Call).where(Call.call_sid == sid).values(
                created_at=utcnow() - dt.timedelta(hours=2)))
        result = app.test_cli_runner().invoke(args=["reminders", "reconcile"])
        assert result.output.strip() == ("0 planned call(s): 0 queued again, 0 already queued; "
                                         "1 call(s) settled from the carrier; "
                                         "1 ended call(s) to check for recordings left at the carrier")
        call = call_row(sessions, sid)
        assert (call.status, call.outcome) == ("completed", "confirmed") and call.ended_at is not None
        assert touch_row(sessions, demo.touch_id).status == "completed"
        with sessions() as session:
            settled = session.scalars(select(CallEvent).where(CallEvent.call_id == call.id,
                                                              CallEvent.kind == "settled")).one()
        assert settled.detail == {"source": "carrier", "status": "completed", "duration": transcript["duration"]}


def test_outcomes_lists_what_is_not_final_after_an_hour(app, runner, dialer, demo, sessions):
    sid = stale_call(app, sessions, demo, age=dt.timedelta(hours=3, seconds=30))
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(
            updated_at=utcnow() - dt.timedelta(hours=2, seconds=30)))
        others = session.scalars(select(Appointment).join(Appointment.patient)
                                 .where(Patient.first_name != "Jane").order_by(Appointment.id)).all()
        overdue = Touch(appointment=others[0], step="reminder", due_at=utcnow() - dt.timedelta(days=1, hours=4, seconds=30))
        on_time = Touch(appointment=others[1], step="reminder", due_at=utcnow() - dt.timedelta(minutes=5))
        session.add_all([overdue, on_time])
        session.flush()
        overdue_id, call_id = overdue.id, session.scalar(select(Call.id).where(Call.call_sid == sid))
    result = runner.invoke(args=["reminders", "outcomes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("not final after 1 h:")
    assert lines[start:] == [
        "not final after 1 h:",
        f"  touch {demo.touch_id}  placed       2 h",
        f"  touch {overdue_id}  planned      1 d 4 h",
        f"  call {call_id}   in-progress  3 h      {sid}",
    ]
    assert demo.patient_phone not in result.output and "Jane" not in result.output


def test_outcomes_says_nothing_more_when_everything_is_final_or_young(runner, demo):
    result = runner.invoke(args=["reminders", "outcomes"])
    assert "not final" not in result.output


def test_ivr_worker_starts_the_chain_once_however_often_it_starts(runner, redis, dialer, demo, sessions):
    for _ in range(2):
        result = runner.invoke(args=["worker", "--burst", "--no-fork"])
        assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == ("worker listening on queue 'ivr-outbound' (burst); "
                                             "reconciling with the database every 60 s")
    queue = outbound_queue(redis)
    assert len(reconcile_jobs(FinishedJobRegistry(queue=queue))) >= 1
    assert len(pending_runs(queue)) == 1
    assert touch_row(sessions, demo.touch_id).status == "placed" and len(dialer.requests) == 1


def test_calls_the_carrier_never_heard_of_are_closed_and_do_not_block_the_others(app, dialer, demo, sessions):
    """Review finding: twenty calls unknown to the carrier (say, after moving from the sandbox to
    Twilio) took every run's whole batch, so a real call behind them was never settled."""
    from ivr.models import Call as CallRow
    from outbound.reconciler import SETTLE_BATCH

    old = utcnow() - dt.timedelta(days=2)
    with sessions.begin() as session:
        session.add_all(CallRow(call_sid=f"CA{0xdead0000 + n:032x}", direction="outbound-api", flow="reminder",
                                status="in-progress", state={}, created_at=old) for n in range(SETTLE_BATCH + 1))
    real = stale_call(app, sessions, demo)
    dialer.statuses[real] = CallStatus("completed", "human", 30)
    services = app.extensions["ivr"]
    with app.app_context():
        first = reconcile_all(services, utcnow())
        second = reconcile_all(services, utcnow())
        third = reconcile_all(services, utcnow())
    assert (first.unknown, second.unknown, second.settled) == (SETTLE_BATCH, 1, 1)
    assert third.unknown == third.settled == 0 and len(dialer.status_requests) == SETTLE_BATCH + 2
    assert call_row(sessions, real).status == "completed"
    unknown = call_row(sessions, f"CA{0xdead0000:032x}")
    assert (unknown.outcome, unknown.ended_at is not None) == ("unknown_to_carrier", True)


def test_a_placed_touch_whose_call_the_carrier_never_heard_of_is_left_uncertain(app, dialer, demo, sessions):
    stale_call(app, sessions, demo, status="queued")
    with app.app_context():
        assert reconcile_all(app.extensions["ivr"], utcnow()).unknown == 1
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.last_error) == ("uncertain", "the carrier has no record of the call")


def test_the_periodic_run_looks_only_at_touches_due_soon(app, redis, demo, sessions):
    """A campaign planned weeks ahead is not fetched from Redis every minute: a touch far off is
    left to its own scheduled job, and queued again only once it comes within the horizon."""
    from outbound.jobs import RECONCILE_HORIZON

    far = utcnow() + dt.timedelta(days=20)
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(due_at=far))
    services = app.extensions["ivr"]
    with app.app_context():
        assert reconcile_all(services, utcnow(), dt.timedelta(seconds=RECONCILE_HORIZON)).planned == 0
        assert reconcile_all(services, far - dt.timedelta(minutes=5),
                             dt.timedelta(seconds=RECONCILE_HORIZON)).planned == 1
        assert reconcile_all(services, utcnow()).planned == 1  # by hand: everything
