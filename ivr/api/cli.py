"""`ivr tokens ...`: the API tokens of each clinic."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ivr.models import API_SCOPES, ApiToken, utcnow
from ivr.services import current_services


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: each belongs to one clinic and may do only what its scopes say."""


@tokens_group.command("add")
@click.argument("clinic_id", type=int)
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(API_SCOPES),
              help="What it may do (repeat for more); default: all of them.")
@with_appcontext
def tokens_add(clinic_id: int, name: str, scopes: tuple[str, ...]) -> None:
    """Make a token for a clinic's system NAME; it is printed once and never stored."""
    from call_flows.text import clean_name
    from ivr.api.tokens import add_token

    label = clean_name(name)
    if not label or len(label) > 100:
        raise click.BadParameter("a name is 1 to 100 characters", param_hint="NAME")
    with current_services().sessions.begin() as session:
        try:
            row, token = add_token(session, clinic_id, label, list(scopes or API_SCOPES))
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"token {row.id} for clinic {clinic_id} ({row.scopes}):")
        click.echo(token)
    click.echo("Keep it now: it is not shown again. Send it as 'Authorization: Bearer <token>'.", err=True)


@tokens_group.command("list")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's.")
@with_appcontext
def tokens_list(clinic_id: int | None) -> None:
    """Tokens (never their secret): id, clinic, name, scopes, last used, revoked."""
    query = select(ApiToken).order_by(ApiToken.id)
    if clinic_id is not None:
        query = query.where(ApiToken.clinic_id == clinic_id)
    with current_services().sessions() as session:
        rows = session.scalars(query).all()
        if not rows:
            click.echo("no tokens")
        for row in rows:
            used = f"used {row.last_used_at:%Y-%m-%d %H:%M}Z" if row.last_used_at else "never used"
            revoked = f"; revoked {row.revoked_at:%Y-%m-%d %H:%M}Z" if row.revoked_at else ""
            click.echo(f"{row.id}  clinic {row.clinic_id}  {row.name}  [{row.scopes}]  {used}{revoked}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke a token: its next request is refused."""
    with current_services().sessions.begin() as session:
        row = session.get(ApiToken, token_id, with_for_update=True)
        if row is None:
            raise click.ClickException(f"no token with id {token_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    click.echo(f"token {token_id}: revoked")
