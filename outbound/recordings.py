"""Deleting callers' recordings at the carrier: the webhook notes each RecordingSid in the
database before it fetches the audio, then queues one job per recording, which deletes it at the
carrier and is retried until the carrier confirms it gone. Once a call has ended, a sweep asks the
carrier for any recording of it that no webhook reported (a request refused or lost on the way)
and deletes those too. The database is the source of truth: reconcile queues again every
recording not yet deleted and every ended call not yet swept."""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue, Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.calls import TERMINAL, note_recording
from ivr.errors import RecordingError
from ivr.models import Call, CarrierRecording, Clinic, utcnow
from ivr.services import current_services
from outbound.queueing import enqueue_once, has_live_job, outbound_queue

log = logging.getLogger(__name__)
# A carrier that refuses now is asked again within seconds, then less often; once these run out,
# reconcile queues a fresh job, so a recording is never given up on.
RETRY = Retry(max=6, interval=[10, 60, 300, 900, 3600, 3600])


def job_id_for_recording(recording_id: int) -> str:
    """The one job id a recording's deletion can have."""
    return f"recording-{recording_id}"


def enqueue_deletion(queue: Queue, recording_id: int) -> bool:
    """Queue the deletion of a recording; False if it was already queued."""
    return enqueue_once(queue, "outbound.recordings.delete_carrier_recording", recording_id,
                        job_id_for_recording(recording_id), f"delete carrier recording {recording_id}", RETRY,
                        result_ttl=86400, failure_ttl=7 * 86400)


def queue_deletion_soon(redis: Redis, recording_id: int) -> None:
    """Queue a deletion from a webhook; if Redis is not there, reconcile will queue it later."""
    try:
        enqueue_deletion(outbound_queue(redis), recording_id)
    except Exception as exc:  # noqa: BLE001 - the caller's turn matters more; the row remains
        log.warning("recording %s: deletion not queued (%s); reconcile will queue it",
                    recording_id, type(exc).__name__)


def queue_sweep_soon(services, call_sid: str) -> None:
    """Queue the sweep of a call that just ended; if that fails, reconcile will queue it."""
    try:
        with services.sessions() as session:
            call_id = session.scalar(select(Call.id).where(Call.call_sid == call_sid))
        if call_id is not None:
            enqueue_sweep(outbound_queue(services.redis), call_id)
    except Exception as exc:  # noqa: BLE001 - reconcile sweeps every ended call not yet swept
        log.warning("call %s: sweep not queued (%s); reconcile will queue it", call_sid, type(exc).__name__)


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


# Ended calls swept per reconcile run, oldest first (each is one request to the carrier).
SWEEP_BATCH = 20


def job_id_for_sweep(call_id: int) -> str:
    """The one job id of a call's sweep."""
    return f"sweep-call-{call_id}"


def enqueue_sweep(queue: Queue, call_id: int) -> bool:
    """Queue the sweep of an ended call; False if it was already queued."""
    return enqueue_once(queue, "outbound.recordings.sweep_call_recordings", call_id, job_id_for_sweep(call_id),
                        f"sweep recordings of call {call_id}", RETRY, result_ttl=86400, failure_ttl=7 * 86400)


def sweep_call_recordings(call_id: int) -> int:
    """The job: ask the carrier for every recording it still holds of an ended call whose clinic
    takes voice answers, note each one and queue its deletion. Returns how many it found."""
    services = current_services()
    with services.sessions() as session:
        row = session.execute(select(Call.call_sid, Call.status, Call.recordings_checked_at,
                                     Clinic.voice_answers)
                              .outerjoin(Clinic, Call.clinic_id == Clinic.id).where(Call.id == call_id)).one_or_none()
    if row is None or row.status not in TERMINAL or row.recordings_checked_at is not None:
        return 0
    # A clinic without voice answers never records; asking the carrier would cost a request per call.
    found = services.recordings.list_for_call(row.call_sid) if row.voice_answers else []
    with services.sessions.begin() as session:
        ids = [note_recording(session, sid, call_id) for sid in found]
        session.get(Call, call_id).recordings_checked_at = utcnow()
    queue = outbound_queue(services.redis)
    for recording_id in ids:
        enqueue_deletion(queue, recording_id)
    if found:
        log.info("call %s: %d recording(s) left at the carrier, deletion queued", call_id, len(found))
    return len(found)


def requeue_sweeps(queue: Queue, session: Session) -> int:
    """Give every ended call not yet swept a live sweep job (the oldest first, a batch per run)."""
    unswept = session.scalars(select(Call.id).where(Call.status.in_(TERMINAL), Call.recordings_checked_at.is_(None))
                              .order_by(Call.id).limit(SWEEP_BATCH))
    return sum(enqueue_sweep(queue, call_id) for call_id in unswept
               if not has_live_job(queue, job_id_for_sweep(call_id)))
