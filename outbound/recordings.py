"""Deleting callers' recordings at the carrier: the webhook notes each RecordingSid in the
database before it fetches the audio, then queues one job per recording, which deletes it at the
carrier and is retried until the carrier confirms it gone. The database is the source of truth:
reconcile queues again every recording not yet deleted."""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.errors import RecordingError
from ivr.models import CarrierRecording, utcnow
from ivr.services import current_services
from outbound.queueing import has_live_job, outbound_queue

log = logging.getLogger(__name__)
# A carrier that refuses now is asked again within seconds, then less often; once these run out,
# reconcile queues a fresh job, so a recording is never given up on.
RETRY = Retry(max=6, interval=[10, 60, 300, 900, 3600, 3600])


def note_recording(session: Session, sid: str, call_id: int | None) -> int:
    """The row of a recording the carrier holds (made once, however often it is reported)."""
    found = session.scalar(select(CarrierRecording.id).where(CarrierRecording.sid == sid))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            recording = CarrierRecording(sid=sid, call_id=call_id)
            session.add(recording)
        return recording.id
    except IntegrityError:  # a duplicate of the same request noted it first
        return session.scalar(select(CarrierRecording.id).where(CarrierRecording.sid == sid))


def job_id_for_recording(recording_id: int) -> str:
    """The one job id a recording's deletion can have."""
    return f"recording-{recording_id}"


def enqueue_deletion(queue: Queue, recording_id: int) -> bool:
    """Queue the deletion of a recording; False if it was already queued."""
    try:
        queue.enqueue("outbound.recordings.delete_carrier_recording", recording_id,
                      job_id=job_id_for_recording(recording_id), unique=True, retry=RETRY,
                      description=f"delete carrier recording {recording_id}", result_ttl=86400,
                      failure_ttl=7 * 86400)
    except DuplicateJobError:
        return False
    return True


def queue_deletion_soon(redis: Redis, recording_id: int) -> None:
    """Queue a deletion from a webhook; if Redis is not there, reconcile will queue it later."""
    try:
        enqueue_deletion(outbound_queue(redis), recording_id)
    except Exception as exc:  # noqa: BLE001 - the caller's turn matters more; the row remains
        log.warning("recording %s: deletion not queued (%s); reconcile will queue it",
                    recording_id, type(exc).__name__)


def delete_carrier_recording(recording_id: int) -> None:
    """The job: delete one recording at the carrier; raise (so rq retries) while it is not gone."""
    services = current_services()
    with services.sessions() as session:
        recording = session.get(CarrierRecording, recording_id)
        if recording is None or recording.deleted_at is not None:
            return
        sid = recording.sid
    try:
        services.recordings.delete(sid)
    except RecordingError as exc:
        _note_attempt(recording_id, str(exc)[:200])
        log.warning("recording %s: not deleted at the carrier yet (%s)", recording_id, exc)
        raise
    _note_attempt(recording_id, None)
    log.info("recording %s deleted at the carrier", recording_id)


def _note_attempt(recording_id: int, error: str | None) -> None:
    """Count an attempt; without an error, the carrier confirmed the recording gone."""
    with current_services().sessions.begin() as session:
        recording = session.get(CarrierRecording, recording_id)
        recording.attempts += 1
        recording.last_error = error
        if error is None:
            recording.deleted_at = utcnow()


def requeue_deletions(queue: Queue, session: Session) -> tuple[int, int]:
    """Give every recording not yet deleted a live job. Returns (queued, already live)."""
    queued = live = 0
    for recording_id in session.scalars(select(CarrierRecording.id)
                                        .where(CarrierRecording.deleted_at.is_(None))
                                        .order_by(CarrierRecording.id)):
        if has_live_job(queue, job_id_for_recording(recording_id)):
            live += 1
        else:  # none, or failed for good: a fresh job starts the retries again
            queued += enqueue_deletion(queue, recording_id)
    return queued, live
