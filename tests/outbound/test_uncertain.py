"""A touch left uncertain (the worker died mid-dial, or the carrier's answer to the dial was lost)
is settled by asking the carrier for the calls it placed to that number: found, the call is
attached and followed; not found, the touch is dialled again. Nothing lost, nothing placed twice."""

import datetime as dt

import pytest
from sqlalchemy import select, update

from ivr.errors import CarrierError
from ivr.models import Call, CallEvent, Touch, utcnow
from ivr.telephony import CarrierCall
from outbound.queueing import outbound_queue
from outbound.reconciler import Report, reconcile_all
from outbound.worker import AppSimpleWorker
from tests.support import seed_demo_touch

CLINIC = "+12125550100"


def leave_uncertain(sessions, touch_id, ago=dt.timedelta(minutes=3), status="uncertain"):
    """The touch as a job leaves it when the dial's answer was lost `ago`."""
    dispatched = utcnow() - ago
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == touch_id).values(
            status=status, attempts=1, dispatched_at=dispatched, updated_at=dispatched,
            last_error="carrier did not answer: ReadTimeout"))
    return dispatched


def touch_row(sessions, touch_id) -> Touch:
    with sessions() as session:
        return session.get(Touch, touch_id)


def reconcile(app) -> Report:
    with app.app_context():
        return reconcile_all(app.extensions["ivr"], utcnow())


def test_a_call_the_carrier_placed_is_attached_and_settled(app, sessions, demo, dialer):
    dispatched = leave_uncertain(sessions, demo.touch_id)
    sid = "CA" + "f" * 32
    dialer.carrier_calls = [CarrierCall(sid, "completed", "human", dispatched + dt.timedelta(seconds=1))]
    report = reconcile(app)
    assert (report.found, report.redialled, report.planned) == (1, 0, 0)
    assert dialer.searches == [(demo.patient_phone, CLINIC, dispatched - dt.timedelta(seconds=30))]
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.call_sid, touch.attempts) == ("completed", sid, 1)
    with sessions() as session:
        call = session.scalars(select(Call).where(Call.call_sid == sid)).one()
        assert (call.touch_id, call.status, call.to_number, call.from_number) == (
            demo.touch_id, "completed", demo.patient_phone, CLINIC)
        assert session.scalars(select(CallEvent.detail).where(
            CallEvent.call_id == call.id, CallEvent.kind == "settled")).one() == {
            "source": "carrier call list", "status": "completed"}
    assert dialer.requests == []
    assert reconcile(app).found == 0  # settled once


def test_a_call_the_carrier_never_placed_is_dialled_again_once(app, sessions, demo, dialer, redis):
    leave_uncertain(sessions, demo.touch_id)
    report = reconcile(app)
    assert (report.found, report.redialled, report.planned, report.queued) == (0, 1, 1, 1)
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.attempts, touch.last_error) == (
        "planned", 1, "the carrier never placed the call; dialling again")
    AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)
    assert [r.to for r in dialer.requests] == [demo.patient_phone]
    assert (touch_row(sessions, demo.touch_id).status, touch_row(sessions, demo.touch_id).attempts) == ("placed", 2)
    # Its second dial is lost too, and the carrier has nothing again: a person looks, instead of
    # the number being dialled on every run.
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="uncertain", call_sid=None))
    leave_uncertain(sessions, demo.touch_id)
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(attempts=2))
    assert reconcile(app).redialled == 0
    touch = touch_row(sessions, demo.touch_id)
    assert (touch.status, touch.last_error) == ("failed", "the carrier never placed its calls; left for a person")
    assert len(dialer.requests) == 1


def test_two_touches_in_doubt_for_one_number_are_left_for_a_person(app, sessions, demo, dialer):
    dispatched = leave_uncertain(sessions, demo.touch_id)
    with sessions.begin() as session:
        session.add(Touch(appointment_id=demo.appointment_id, step="other", channel="voice", due_at=dispatched,
                          status="uncertain", attempts=1, dispatched_at=dispatched))
    dialer.carrier_calls = [CarrierCall("CA" + "9" * 32, "completed", None, dispatched + dt.timedelta(seconds=1))]
    report = reconcile(app)
    assert (report.found, report.redialled) == (0, 0)
    with sessions() as session:
        assert {t.status for t in session.scalars(select(Touch))} == {"uncertain"}


def test_another_touchs_call_to_the_same_number_is_not_taken_for_this_one(app, sessions, demo, dialer):
    dispatched = leave_uncertain(sessions, demo.touch_id)
    other = seed_other_touch_call(sessions, demo, "CA" + "e" * 32)
    dialer.carrier_calls = [CarrierCall("CA" + "e" * 32, "completed", None, dispatched + dt.timedelta(seconds=5))]
    assert reconcile(app).redialled == 1
    assert touch_row(sessions, demo.touch_id).status == "planned"
    assert touch_row(sessions, other).call_sid == "CA" + "e" * 32


def seed_other_touch_call(sessions, demo, sid) -> int:
    from ivr import calls

    with sessions.begin() as session:
        touch = Touch(appointment_id=demo.appointment_id, step="other", channel="voice", due_at=utcnow(),
                      status="placed", call_sid=sid)
        session.add(touch)
        session.flush()
        calls.open_outbound_call(session, sid, touch.id, status="completed")
        return touch.id


def test_a_carrier_that_cannot_list_leaves_the_touch_for_the_next_run(app, sessions, demo, dialer):
    leave_uncertain(sessions, demo.touch_id)
    dialer.carrier_calls = CarrierError("carrier did not answer: ConnectTimeout")
    assert reconcile(app).unasked == 1
    assert touch_row(sessions, demo.touch_id).status == "uncertain"


def test_a_touch_uncertain_for_under_two_minutes_is_not_asked_about_yet(app, sessions, demo, dialer):
    leave_uncertain(sessions, demo.touch_id, ago=dt.timedelta(seconds=60))
    assert reconcile(app) == Report()
    assert dialer.searches == []


@pytest.mark.parametrize("listed,status", [(True, "completed"), (False, "planned")])
def test_a_worker_killed_while_dialling_is_settled_through_the_carriers_list(app, sessions, demo, dialer,
                                                                             listed, status):
    # Claimed 11 minutes ago and never heard of again: stuck, then uncertain, then asked, in one run.
    dispatched = leave_uncertain(sessions, demo.touch_id, ago=dt.timedelta(minutes=11), status="dialing")
    if listed:
        dialer.carrier_calls = [CarrierCall("CA" + "d" * 32, "completed", None, dispatched + dt.timedelta(seconds=2))]
    report = reconcile(app)
    assert (report.stuck, report.found, report.redialled) == (1, int(listed), int(not listed))
    assert touch_row(sessions, demo.touch_id).status == status


def test_an_early_callback_gives_the_touch_its_call_sid_before_the_job_does(twilio, sessions, demo):
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="dialing"))
    sid = "CA" + "c" * 32
    assert twilio.post(f"/twilio/status/outbound/{demo.touch_id}", {"CallSid": sid, "CallStatus": "ringing"}
                       ).status_code == 204
    assert (touch_row(sessions, demo.touch_id).status, touch_row(sessions, demo.touch_id).call_sid) == ("dialing", sid)


def test_the_sandbox_carrier_lists_the_call_a_lost_answer_hid(sandbox_app_factory, redis):
    """End to end over HTTP with the real Twilio client: the carrier placed the call but our side
    never learned its SID, and every callback was lost; reconcile finds it in the carrier's list."""
    from ivr.sandbox import calling, script as scripts
    from ivr.sandbox.carrier import SandboxCarrier
    from ivr.telephony import CallRequest

    with calling.serve(sandbox_app_factory) as (app, _base):
        services = app.extensions["ivr"]
        sessions = services.sessions
        demo = seed_demo_touch(sessions)
        store = SandboxCarrier.store_for(services.settings, redis)
        everything = ["initiated", "ringing", "answered", "completed"]
        store.set_phone(demo.patient_phone, scripts.parse({"answer": "busy", "callbacks": {"lose": everything}}))
        store.set_phone("+12125550162", scripts.parse({"answer": "busy"}))
        dispatched = leave_uncertain(sessions, demo.touch_id)
        base = services.settings.public_base_url
        with app.app_context():
            # Another number's call, and then ours, whose SID the dial's lost answer would have held.
            services.dialer.place_call(CallRequest(to="+12125550162", from_=CLINIC, url=f"{base}/x",
                                                   status_callback=f"{base}/y"))
            placed = services.dialer.place_call(CallRequest(
                to=demo.patient_phone, from_=CLINIC, url=f"{base}/twilio/voice/outbound/{demo.touch_id}",
                status_callback=f"{base}/twilio/status/outbound/{demo.touch_id}"))
            calling.wait_for_transcript(store, placed, timeout=30)
            found = services.dialer.find_calls(demo.patient_phone, CLINIC, dispatched)
        assert [(c.sid, c.status) for c in found] == [(placed, "busy")]
        result = app.test_cli_runner().invoke(args=["reminders", "reconcile"])
        assert "1 uncertain call(s) found at the carrier" in result.output, result.output
        touch = touch_row(sessions, demo.touch_id)
        # Found busy: the lone reminder is not retried, and is not dialled again either.
        assert (touch.status, touch.call_sid) == ("unreached", placed)
