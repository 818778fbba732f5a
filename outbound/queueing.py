"""Enqueue touches on RQ with deterministic job ids, so the same touch is never queued twice."""

from __future__ import annotations

import datetime as dt

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

QUEUE_NAME = "ivr-outbound"
# Carrier hiccups are retried after 1, 5 and 15 minutes; refusals are not (see jobs.py).
RETRY = Retry(max=3, interval=[60, 300, 900])


def outbound_queue(connection: Redis) -> Queue:
    """The queue that outbound calls wait in."""
    return Queue(QUEUE_NAME, connection=connection)


def job_id_for_touch(touch_id: int) -> str:
    """The one job id a touch can ever have."""
    return f"touch-{touch_id}"


def enqueue_touch(queue: Queue, touch_id: int, due_at: dt.datetime | None = None) -> bool:
    """Queue the call for a touch (at due_at if in the future); False if it was already queued."""
    options = dict(job_id=job_id_for_touch(touch_id), unique=True, retry=RETRY,
                   description=f"place call for touch {touch_id}", result_ttl=7 * 86400,
                   failure_ttl=30 * 86400)
    try:
        if due_at is not None and due_at > dt.datetime.now(dt.timezone.utc):
            queue.enqueue_at(due_at, "outbound.jobs.place_touch_call", touch_id, **options)
        else:
            queue.enqueue("outbound.jobs.place_touch_call", touch_id, **options)
    except DuplicateJobError:
        return False
    return True


LIVE_STATES = ("queued", "scheduled", "started", "deferred")


def reconcile(queue: Queue, planned: list[tuple[int, dt.datetime]]) -> tuple[int, int]:
    """Make sure every planned touch has a live job (the database is the source of truth: after
    Redis lost its data, or a job finished without dialling, e.g. outside calling hours).
    Returns (queued, already live)."""
    from rq.job import Job
    from rq.exceptions import NoSuchJobError

    queued = live = 0
    for touch_id, due_at in planned:
        try:
            job = Job.fetch(job_id_for_touch(touch_id), connection=queue.connection)
        except NoSuchJobError:
            job = None
        if job is not None and job.get_status(refresh=True) in LIVE_STATES:
            live += 1
            continue
        if job is not None:
            job.delete()  # finished or failed, but the touch is still planned: try again
        queued += enqueue_touch(queue, touch_id, due_at)
    return queued, live
