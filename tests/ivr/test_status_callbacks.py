"""Status callbacks arrive twice and out of order; a call only ever moves forward."""

import pytest
from sqlalchemy import select, update

from ivr.models import Call, CallEvent, Touch
from tests.support import call_sid


def status(twilio, demo, value, sid=None, **extra):
    return twilio.post(f"/twilio/status/outbound/{demo.touch_id}",
                       {"CallSid": sid or call_sid(), "CallStatus": value, **extra})


def call_row(sessions):
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        statuses = [e.detail["to"] for e in session.scalars(
            select(CallEvent).where(CallEvent.kind == "status").order_by(CallEvent.id))]
        touch = session.get(Touch, call.touch_id)
        return call, statuses, touch


@pytest.mark.parametrize("arrivals,final,recorded", [
    (["initiated", "ringing", "in-progress", "completed"], "completed",
     ["initiated", "ringing", "in-progress", "completed"]),
    (["ringing", "ringing", "completed", "completed"], "completed", ["ringing", "completed"]),
    (["completed", "ringing", "in-progress", "initiated"], "completed", ["completed"]),
    (["initiated", "in-progress", "ringing", "completed", "in-progress"], "completed",
     ["initiated", "in-progress", "completed"]),
    (["ringing", "no-answer", "ringing"], "no-answer", ["ringing", "no-answer"]),
    (["busy", "completed"], "busy", ["busy"]),
])
def test_duplicates_and_reordering_never_move_a_call_backwards(twilio, demo, sessions, arrivals,
                                                               final, recorded):
    for value in arrivals:
        assert status(twilio, demo, value).status_code == 204
    call, statuses, _ = call_row(sessions)
    assert call.status == final
    assert statuses == recorded


def dialled(sessions, demo):
    """The touch as its job leaves it once the call is placed."""
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="placed", attempts=1))


def test_completed_without_an_outcome_is_a_hang_up_and_closes_the_touch(twilio, demo, sessions):
    dialled(sessions, demo)
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    status(twilio, demo, "completed", CallDuration="7")
    call, _, touch = call_row(sessions)
    assert (call.status, call.outcome, touch.status) == ("completed", "hung_up", "completed")
    assert call.ended_at is not None


@pytest.mark.parametrize("value", ["busy", "no-answer", "failed", "canceled"])
def test_unreached_calls_mark_the_touch_unreached(twilio, demo, sessions, value):
    dialled(sessions, demo)
    status(twilio, demo, value)
    call, _, touch = call_row(sessions)
    assert (call.status, call.outcome, touch.status) == (value, "unreached", "unreached")


def test_an_outcome_from_the_flow_survives_the_final_callback(twilio, demo, sessions):
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    twilio.post("/twilio/voice/step?turn=1", {"CallSid": call_sid(), "Digits": "1"})
    twilio.post("/twilio/voice/step?turn=2", {"CallSid": call_sid(), "Digits": "1"})
    status(twilio, demo, "completed")
    status(twilio, demo, "completed")
    call, statuses, _ = call_row(sessions)
    assert (call.outcome, statuses) == ("confirmed", ["completed"])


def test_answered_by_is_recorded(twilio, demo, sessions):
    status(twilio, demo, "in-progress", AnsweredBy="machine_end_beep")
    call, _, _ = call_row(sessions)
    assert call.answered_by == "machine_end_beep"


def test_callback_for_an_unknown_call_on_the_generic_route_is_ignored(twilio, demo, sessions):
    assert twilio.post("/twilio/status", {"CallSid": call_sid(9), "CallStatus": "completed"}).status_code == 204
    with sessions() as session:
        assert session.scalars(select(Call)).all() == []


@pytest.mark.parametrize("data", [{"CallSid": call_sid()}, {"CallSid": call_sid(), "CallStatus": "exploded"},
                                  {"CallStatus": "completed"}])
def test_malformed_status_callbacks_get_400(twilio, demo, data):
    assert twilio.post(f"/twilio/status/outbound/{demo.touch_id}", data).status_code == 400
