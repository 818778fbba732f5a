"""`ivr webhooks ...`: where a clinic's systems are told of events, and what was sent them."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select, update

from ivr.models import EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from ivr.services import current_services


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhooks to the clinic's own systems: endpoints, deliveries, replays."""


def _url(value: str, production: bool) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise click.BadParameter("give an http(s) URL with a host and no user or password", param_hint="URL")
    if production and parts.scheme != "https":
        raise click.BadParameter("in production events are sent over https only", param_hint="URL")
    if len(value) > 500:
        raise click.BadParameter("a URL is at most 500 characters", param_hint="URL")
    return value


@webhooks_group.command("add")
@click.argument("clinic_id", type=int)
@click.argument("url")
@click.option("--event", "event_types", multiple=True, type=click.Choice(EVENT_TYPES),
              help="An event it wants (repeat for more); default: every event.")
@with_appcontext
def webhooks_add(clinic_id: int, url: str, event_types: tuple[str, ...]) -> None:
    """Send a clinic's events to URL, signed with a new secret (printed once)."""
    from ivr.models import Clinic

    services = current_services()
    url = _url(url, services.settings.is_production)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with services.sessions.begin() as session:
        if session.get(Clinic, clinic_id) is None:
            raise click.ClickException(f"no clinic with id {clinic_id}")
        endpoint = WebhookEndpoint(clinic_id=clinic_id, url=url, secret=secret,
                                   events=" ".join(t for t in EVENT_TYPES if t in event_types) or "*")
        session.add(endpoint)
        session.flush()
        click.echo(f"webhook endpoint {endpoint.id} for clinic {clinic_id} ({endpoint.events}): {url}")
    click.echo(secret)
    click.echo("Keep the secret now: the receiver verifies each delivery with it (Standard Webhooks); "
               "it is not shown again.", err=True)


@webhooks_group.command("list")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's.")
@with_appcontext
def webhooks_list(clinic_id: int | None) -> None:
    """Endpoints (never their secret) with their deliveries waiting and failed."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if clinic_id is not None:
        query = query.where(WebhookEndpoint.clinic_id == clinic_id)
    with current_services().sessions() as session:
        endpoints = session.scalars(query).all()
        if not endpoints:
            click.echo("no webhook endpoints")
        for endpoint in endpoints:
            counts = dict(session.execute(select(WebhookDelivery.status, func.count()).where(
                WebhookDelivery.endpoint_id == endpoint.id).group_by(WebhookDelivery.status)).all())
            state = f"disabled {endpoint.disabled_at:%Y-%m-%d}" if endpoint.disabled_at else "active"
            click.echo(f"{endpoint.id}  clinic {endpoint.clinic_id}  {endpoint.url}  [{endpoint.events}]  {state}  "
                       f"{counts.get('delivered', 0)} delivered, {counts.get('pending', 0)} waiting, "
                       f"{counts.get('failed', 0)} failed")


@webhooks_group.command("disable")
@click.argument("endpoint_id", type=int)
@with_appcontext
def webhooks_disable(endpoint_id: int) -> None:
    """Stop sending to an endpoint (deliveries waiting stay, for a replay)."""
    with current_services().sessions.begin() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            raise click.ClickException(f"no webhook endpoint with id {endpoint_id}")
        endpoint.disabled_at = endpoint.disabled_at or utcnow()
    click.echo(f"webhook endpoint {endpoint_id}: disabled")


@webhooks_group.command("deliveries")
@click.option("--endpoint", "endpoint_id", type=int, help="Only this endpoint's.")
@click.option("--status", type=click.Choice(("pending", "delivered", "failed")), help="Only these.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="The newest this many.")
@with_appcontext
def webhooks_deliveries(endpoint_id: int | None, status: str | None, limit: int) -> None:
    """Deliveries, newest first: event, state, attempts and what the receiver last answered."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    with current_services().sessions() as session:
        deliveries = session.scalars(query).all()
        if not deliveries:
            click.echo("no deliveries")
        for delivery in deliveries:
            last = session.scalar(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
                                  .order_by(WebhookAttempt.id.desc()).limit(1))
            answer = "-" if last is None else (f"HTTP {last.status_code}" if last.status_code else last.error)
            click.echo(f"{delivery.id}  endpoint {delivery.endpoint_id}  {delivery.event_type}  {delivery.status}  "
                       f"{delivery.attempts} attempt(s), last: {answer}  {delivery.created_at:%Y-%m-%d %H:%M:%S}Z")


@webhooks_group.command("replay")
@click.argument("delivery_ids", type=int, nargs=-1)
@click.option("--failed", "endpoint_failed", type=int, metavar="ENDPOINT",
              help="Every failed delivery of this endpoint.")
@with_appcontext
def webhooks_replay(delivery_ids: tuple[int, ...], endpoint_failed: int | None) -> None:
    """Send deliveries again from their first attempt, under the same webhook-id (a receiver
    that took one already can tell it is a repeat)."""
    from outbound.event_delivery import queue_delivery
    from outbound.queueing import outbound_queue

    if not delivery_ids and endpoint_failed is None:
        raise click.UsageError("name deliveries, or --failed ENDPOINT")
    services, now = current_services(), utcnow()
    with services.sessions.begin() as session:
        if endpoint_failed is not None and session.get(WebhookEndpoint, endpoint_failed) is None:
            raise click.ClickException(f"no webhook endpoint with id {endpoint_failed}")
        query = select(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids)) if delivery_ids else (
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_failed,
                                          WebhookDelivery.status == "failed"))
        rows = session.scalars(query.order_by(WebhookDelivery.id)).all()
        missing = sorted(set(delivery_ids) - {row.id for row in rows})
        if missing:
            raise click.ClickException(f"no delivery with id {missing[0]}")
        waiting = [row.id for row in rows if row.status == "pending"]
        if waiting:  # its next attempt is queued: a second chain would send it twice
            raise click.ClickException(f"delivery {waiting[0]} is waiting for its next attempt already")
        disabled = {row.endpoint_id for row in rows
                    if session.get(WebhookEndpoint, row.endpoint_id).disabled_at is not None}
        if disabled:
            raise click.ClickException(f"webhook endpoint {min(disabled)} is disabled")
        found = [row.id for row in rows]
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(found)).values(
            status="pending", attempts=0, next_attempt_at=now, delivered_at=None))
    queue = outbound_queue(services.redis)
    for delivery_id in found:
        queue_delivery(queue, delivery_id)
    click.echo(f"{len(found)} delivery(ies) queued to be sent again")
