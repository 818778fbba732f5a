"""Enqueue touches on RQ with deterministic job ids, so the same touch is never queued twice."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from typing import NamedTuple

from redis import Redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
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
    options = dict(unique=True, **_touch_job_options(touch_id))
    try:
        if due_at is not None and due_at > dt.datetime.now(dt.timezone.utc):
            queue.enqueue_at(due_at, "outbound.jobs.place_touch_call", touch_id, **options)
        else:
            queue.enqueue("outbound.jobs.place_touch_call", touch_id, **options)
    except DuplicateJobError:
        return False
    return True


def enqueue_once(queue: Queue, func: str, arg: int | str, job_id: str, description: str, retry: Retry,
                 result_ttl: int = 7 * 86400, failure_ttl: int = 30 * 86400, at_front: bool = False) -> bool:
    """Queue a job under the one id its work can have (rq's atomic unique); False if it was
    already queued (or ran, while its result is kept)."""
    try:
        queue.enqueue(func, arg, job_id=job_id, unique=True, retry=retry, description=description,
                      result_ttl=result_ttl, failure_ttl=failure_ttl, at_front=at_front)
    except DuplicateJobError:
        return False
    return True


LIVE_STATES = ("queued", "scheduled", "started", "deferred")


# Touches looked up and queued per Redis round trip when many are queued at once.
BATCH = 1000


class Queued(NamedTuple):
    """What giving planned touches their jobs did."""

    queued: int   # touches given a job now
    live: int     # touches whose job was waiting or running already
    later: int    # of those queued, how many wait for their time in the scheduler

    @property
    def planned(self) -> int:
        return self.queued + self.live


def reconcile(queue: Queue, planned: Iterable[tuple[int, dt.datetime]]) -> Queued:
    """Make sure every planned touch has a live job (the database is the source of truth: after
    Redis lost its data, or a job finished without dialling, e.g. outside calling hours).

    Touches are looked up and queued in pipelined batches as the iterable yields them (a campaign
    can plan a hundred thousand at once). A batch is not atomic with another enqueuer the way
    `enqueue_touch` is, so two reconciles at the same moment may queue one touch twice: its job
    claims the touch in the database first, so the call is still placed once."""
    queued = live = later_count = 0
    rows = iter(planned)
    while chunk := list(itertools.islice(rows, BATCH)):
        now = dt.datetime.now(dt.timezone.utc)  # after the chunk was read: "due now" is due now
        jobs = Job.fetch_many([job_id_for_touch(touch_id) for touch_id, _ in chunk], connection=queue.connection)
        due_now, later = [], []
        for (touch_id, due_at), job in zip(chunk, jobs):
            if job is not None and job.get_status(refresh=False) in LIVE_STATES:
                live += 1
                continue
            if job is not None:
                job.delete()  # finished or failed: the database still wants the work done
            (later if due_at > now else due_now).append((touch_id, due_at))
        with queue.connection.pipeline() as pipe:
            if due_now:
                queue.enqueue_many([Queue.prepare_data("outbound.jobs.place_touch_call", (touch_id,),
                                                       **_touch_job_options(touch_id))
                                    for touch_id, _ in due_now], pipeline=pipe)
            for touch_id, due_at in later:
                job = queue.create_job("outbound.jobs.place_touch_call", args=(touch_id,),
                                       status=JobStatus.SCHEDULED, **_touch_job_options(touch_id))
                queue.schedule_job(job, due_at, pipeline=pipe)
            pipe.execute()
        queued += len(due_now) + len(later)
        later_count += len(later)
    return Queued(queued, live, later_count)


def _touch_job_options(touch_id: int) -> dict:
    """A touch job's id, retries and how long its record is kept."""
    return dict(job_id=job_id_for_touch(touch_id), retry=RETRY, description=f"place call for touch {touch_id}",
                result_ttl=7 * 86400, failure_ttl=30 * 86400)


def has_live_job(queue: Queue, job_id: str) -> bool:
    """Whether the job is waiting or running; a finished or failed one is deleted, so that the
    work the database still wants can be queued again under the same id."""
    from rq.job import Job
    from rq.exceptions import NoSuchJobError

    try:
        job = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=True) in LIVE_STATES:
        return True
    job.delete()
    return False


RECONCILE_JOB = "outbound.jobs.reconcile_outbound"


def reconcile_job_id(slot: int, period: int) -> str:
    """The one job id of the reconcile run for a time slot (slot * period seconds since the epoch)."""
    return f"reconcile-{period}s-{slot}"


def start_reconcile_chain(queue: Queue, period: int, now: dt.datetime | None = None) -> bool:
    """Run reconcile now unless a run of the current slot exists already; any number of workers
    may call this at any time without multiplying the chain. True when a run was queued."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return _enqueue_reconcile(queue, int(now.timestamp()) // period, period, at=None)


def schedule_next_reconcile(queue: Queue, period: int, now: dt.datetime | None = None) -> bool:
    """Schedule the run of the slot after now (not after the slot that is running: a late run
    skips the slots it missed rather than catching up on each). False when it exists already."""
    now = now or dt.datetime.now(dt.timezone.utc)
    slot = int(now.timestamp()) // period + 1
    return _enqueue_reconcile(queue, slot, period,
                              at=dt.datetime.fromtimestamp(slot * period, dt.timezone.utc))


def _enqueue_reconcile(queue: Queue, slot: int, period: int, at: dt.datetime | None) -> bool:
    # A finished run's record outlives its slot, so a worker starting later in the slot does
    # not run it again; failed runs are kept a day for people to read.
    # At the front: a campaign's backlog must not delay the run that keeps the queue honest.
    options = dict(job_id=reconcile_job_id(slot, period), unique=True, job_timeout=300, at_front=True,
                   result_ttl=max(600, 2 * period), failure_ttl=86400,
                   description="bring the outbound queue and calls in step with the database")
    try:
        if at is None:
            queue.enqueue(RECONCILE_JOB, **options)
        else:
            queue.enqueue_at(at, RECONCILE_JOB, **options)
    except DuplicateJobError:
        return False
    return True
