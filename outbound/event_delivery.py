"""Sending webhook deliveries to the clinic's receivers: signed per Standard Webhooks (the
`standardwebhooks` package), tried again on a schedule of back-offs, every attempt recorded."""

from __future__ import annotations

import datetime as dt
import time

import requests
from rq import Queue
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from ivr.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from ivr.services import current_services
from outbound.queueing import has_live_job

# The wait before each attempt after the first, as Standard Webhooks advises: a receiver down
# for a day still gets every event (about 27 hours in all), then the delivery is failed.
BACK_OFF = (dt.timedelta(seconds=5), dt.timedelta(minutes=5), dt.timedelta(minutes=30), dt.timedelta(hours=2),
            dt.timedelta(hours=5), dt.timedelta(hours=10), dt.timedelta(hours=10))
TIMEOUT = (5, 15)  # seconds to connect, to answer
CLAIM = dt.timedelta(minutes=1)  # longer than an attempt can take


def job_id_for_delivery(delivery_id: int, attempt: int) -> str:
    """The one job id of a delivery's attempt (so a lost job is queued again, never twice)."""
    return f"webhook-{delivery_id}-{attempt}"


def queue_delivery(queue: Queue, delivery_id: int, attempt: int = 0, at: dt.datetime | None = None) -> bool:
    """Queue an attempt at a delivery (at `at`, when later); False if it is queued already."""
    from rq.exceptions import DuplicateJobError

    options = dict(job_id=job_id_for_delivery(delivery_id, attempt), unique=True, result_ttl=86400,
                   failure_ttl=7 * 86400, description=f"webhook delivery {delivery_id}, attempt {attempt + 1}")
    if has_live_job(queue, options["job_id"]):  # (a finished one is deleted: a replay needs its id)
        return False
    try:
        if at is not None and at > utcnow():
            queue.enqueue_at(at, "outbound.event_delivery.deliver", delivery_id, **options)
        else:
            queue.enqueue("outbound.event_delivery.deliver", delivery_id, **options)
    except DuplicateJobError:
        return False
    return True


def deliver(delivery_id: int) -> str:
    """Send a delivery once: taken (2xx), or recorded as failed and its next attempt queued after
    its back-off. A failure is the receiver's, not the job's, so the job does not raise: the
    database keeps the schedule, and the reconciler restores it if Redis loses the job."""
    services = current_services()
    now = utcnow()
    with services.sessions.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.status != "pending":
            return "not pending"
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + dt.timedelta(seconds=1):
            return "not due"
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint.disabled_at is not None:
            return "endpoint disabled"
        url, secret, message_id, payload = endpoint.url, endpoint.secret, delivery.message_id, delivery.payload
        # Claimed for now: another job for the same attempt waits its back-off instead.
        delivery.next_attempt_at = now + CLAIM
    code, error, took = _post(url, secret, message_id, payload)
    with services.sessions.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        delivery.attempts += 1
        session.add(WebhookAttempt(delivery_id=delivery_id, attempted_at=now, status_code=code, error=error,
                                   duration_ms=took))
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", utcnow(), None
            return "delivered"
        if delivery.attempts > len(BACK_OFF):
            delivery.status, delivery.next_attempt_at = "failed", None
            return "failed"
        delivery.next_attempt_at = utcnow() + BACK_OFF[delivery.attempts - 1]
        attempt, at = delivery.attempts, delivery.next_attempt_at
    from outbound.queueing import outbound_queue

    queue_delivery(outbound_queue(services.redis), delivery_id, attempt, at)
    return f"attempt {attempt} failed; again at {at:%Y-%m-%d %H:%M:%S}Z"


def _post(url: str, secret: str, message_id: str, payload: str) -> tuple[int | None, str | None, int]:
    """POST the signed payload: (HTTP status or None, why it failed or None, milliseconds). The
    receiver's body is not read: it is not ours to keep."""
    sent = utcnow()
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(sent.timestamp())),
               "webhook-signature": Webhook(secret).sign(message_id, sent, payload),
               "Content-Type": "application/json", "User-Agent": "clinic-engagement-server webhooks"}
    started = time.monotonic()
    try:
        with requests.Session() as http:
            http.trust_env = False  # no proxy or .netrc from the worker's environment
            with http.post(url, data=payload.encode(), headers=headers, timeout=TIMEOUT, allow_redirects=False,
                           stream=True) as response:
                code = response.status_code
        error = None if 200 <= code < 300 else f"HTTP {code}"
    except requests.RequestException as exc:
        code, error = None, type(exc).__name__
    return code, error, int((time.monotonic() - started) * 1000)


# Pending deliveries looked at per reconcile: the oldest due first, the rest next time.
REQUEUE_BATCH = 500


def requeue_deliveries(queue: Queue, session) -> int:
    """Give pending deliveries due within the hour (to endpoints still live) a job for their next
    attempt, after Redis lost its work."""
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.next_attempt_at)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.status == "pending", WebhookEndpoint.disabled_at.is_(None),
               WebhookDelivery.next_attempt_at <= utcnow() + dt.timedelta(hours=1))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(REQUEUE_BATCH)).all()
    return sum(queue_delivery(queue, delivery_id, attempts, at) for delivery_id, attempts, at in rows)
