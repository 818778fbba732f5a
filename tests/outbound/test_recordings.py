"""Callers' recordings are deleted at the carrier, retried until they are gone, and requeued from
the database when their jobs were lost."""

import pytest
from rq.job import Job, JobStatus
from sqlalchemy import select

from ivr.errors import RecordingError
from ivr.models import CarrierRecording
from outbound.queueing import outbound_queue
from ivr.calls import note_recording
from outbound.recordings import (delete_carrier_recording, job_id_for_recording,
                                 requeue_deletions)
from outbound.worker import AppSimpleWorker
from tests.support import call_sid

SID = "RE" + "a" * 32


def rows(sessions):
    with sessions() as session:
        return session.scalars(select(CarrierRecording).order_by(CarrierRecording.id)).all()


def run_burst(app, redis):
    AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)


def test_a_recording_is_noted_once_however_often_it_is_reported(sessions):
    with sessions.begin() as session:
        first = note_recording(session, SID, None)
        assert note_recording(session, SID, None) == first
    assert [r.sid for r in rows(sessions)] == [SID]


def test_a_key_that_ends_a_recording_still_gets_the_recording_deleted(app, twilio, demo, sessions,
                                                                       redis, recordings):
    """Twilio keeps a recording even when a key ended it: the key is the answer, and the
    recording goes."""
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    response = twilio.post("/twilio/voice/step?turn=1", {
        "CallSid": call_sid(), "Digits": "1", "RecordingSid": SID,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/" + SID})
    assert b"You have an appointment" in response.data
    (row,) = rows(sessions)
    assert (row.sid, row.deleted_at) == (SID, None)
    assert Job.fetch(job_id_for_recording(row.id), connection=redis).get_status() == JobStatus.QUEUED
    run_burst(app, redis)
    assert recordings.deleted == [SID]
    (row,) = rows(sessions)
    assert row.deleted_at is not None and row.attempts == 1


def test_a_malformed_recording_sid_is_400(twilio, demo):
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    response = twilio.post("/twilio/voice/step?turn=1", {"CallSid": call_sid(), "RecordingSid": "RE../x"})
    assert response.status_code == 400


def test_a_carrier_that_refuses_is_asked_again_until_the_recording_is_gone(app, sessions, redis, recordings):
    with sessions.begin() as session:
        recording_id = note_recording(session, SID, None)
    recordings.fail_with = RecordingError("recording not deleted: HTTP 503, code 20500")
    with app.app_context(), pytest.raises(RecordingError):
        delete_carrier_recording(recording_id)
    (row,) = rows(sessions)
    assert (row.attempts, row.deleted_at, row.last_error) == (
        1, None, "recording not deleted: HTTP 503, code 20500")
    recordings.fail_with = None
    with app.app_context():
        delete_carrier_recording(recording_id)
        delete_carrier_recording(recording_id)  # a second run finds it gone and asks nothing
    (row,) = rows(sessions)
    assert (row.attempts, row.last_error) == (2, None) and row.deleted_at is not None
    assert recordings.deleted == [SID]


def test_a_failing_deletion_job_is_retried_by_rq(app, sessions, redis, recordings):
    from outbound.recordings import enqueue_deletion

    with sessions.begin() as session:
        recording_id = note_recording(session, SID, None)
    recordings.fail_with = RecordingError("recording not deleted: HTTP 500, code 20500")
    queue = outbound_queue(redis)
    assert enqueue_deletion(queue, recording_id) and not enqueue_deletion(queue, recording_id)
    run_burst(app, redis)
    job = Job.fetch(job_id_for_recording(recording_id), connection=redis)
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 5


def test_reconcile_queues_again_every_recording_not_yet_deleted(app, sessions, redis, recordings):
    """After Redis lost its jobs (or the retries ran out), the database still knows."""
    with sessions.begin() as session:
        gone = note_recording(session, "RE" + "b" * 32, None)
        pending = note_recording(session, SID, None)
        session.get(CarrierRecording, gone).deleted_at = session.get(CarrierRecording, gone).created_at
    queue = outbound_queue(redis)
    with sessions() as session:
        assert requeue_deletions(queue, session) == (1, 0)
        assert requeue_deletions(queue, session) == (0, 1)
    assert queue.job_ids == [job_id_for_recording(pending)]
    run_burst(app, redis)
    assert recordings.deleted == [SID]


def test_the_periodic_reconcile_queues_deletions_redis_lost(app, runner, sessions, redis, recordings):
    with sessions.begin() as session:
        note_recording(session, SID, None)
    result = runner.invoke(args=["reminders", "reconcile"])
    assert result.output.strip().endswith("deletion of 1 recording(s) at the carrier queued again")
    run_burst(app, redis)
    assert recordings.deleted == [SID]
    assert runner.invoke(args=["reminders", "reconcile"]).output.strip() == \
        "0 planned call(s): 0 queued again, 0 already queued"


def end_call(twilio, demo, status="completed"):
    return twilio.post(f"/twilio/status/outbound/{demo.touch_id}", {"CallSid": call_sid(), "CallStatus": status})


def voice_answers(sessions, on=True):
    from sqlalchemy import update

    from ivr.models import Clinic

    with sessions.begin() as session:
        session.execute(update(Clinic).values(voice_answers=on))


def test_a_recording_no_webhook_reported_is_found_and_deleted_once_the_call_ends(
        app, twilio, demo, sessions, redis, recordings):
    """A Record action refused or lost on its way: the webhook never saw the recording, but the
    carrier still holds it. The call's end queues a sweep that finds it and deletes it."""
    from ivr.models import Call

    voice_answers(sessions)
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    recordings.by_call[call_sid()] = [SID]
    assert end_call(twilio, demo).status_code == 204
    run_burst(app, redis)  # the sweep, then the deletion it queued
    run_burst(app, redis)
    assert recordings.listed == [call_sid()] and recordings.deleted == [SID]
    with sessions() as session:
        assert session.scalars(select(Call.recordings_checked_at)).one() is not None
    (row,) = rows(sessions)
    assert row.deleted_at is not None and row.call_id is not None


def test_a_clinic_that_never_records_costs_the_carrier_no_question(app, twilio, demo, sessions, redis, recordings):
    voice_answers(sessions, on=False)
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    end_call(twilio, demo, "no-answer")
    run_burst(app, redis)
    assert recordings.listed == [] and rows(sessions) == []


def test_a_recording_reported_only_by_its_url_is_still_noted(app, twilio, demo, sessions, redis, recordings):
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    twilio.post("/twilio/voice/step?turn=1", {
        "CallSid": call_sid(), "Digits": "1",
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/{SID}.wav"})
    assert [r.sid for r in rows(sessions)] == [SID]
    run_burst(app, redis)
    assert recordings.deleted == [SID]
