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
