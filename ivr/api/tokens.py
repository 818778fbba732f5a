"""API tokens: made once and shown once, kept as a SHA-256, checked on every request."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass

from flask import abort, g, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ivr.db import read_only
from ivr.models import API_SCOPES, ApiToken, Clinic, utcnow
from ivr.services import current_services

TOKEN_PREFIX = "ivr_"
# last_used_at is written at most this often per token, not on every request.
LAST_USED_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the token's clinic and what it may do."""

    token_id: int
    clinic_id: int
    scopes: frozenset[str]


def digest(token: str) -> str:
    """The token's SHA-256, hex. Tokens are 256 random bits, so a fast hash is enough: there is
    nothing to guess, unlike a password, and a request must not wait on argon2."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_token(session: Session, clinic_id: int, name: str, scopes: list[str]) -> tuple[ApiToken, str]:
    """A new token for a clinic: the row and the token itself (shown once, never stored)."""
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: use {', '.join(API_SCOPES)}")
    if session.get(Clinic, clinic_id) is None:
        raise LookupError(f"no clinic with id {clinic_id}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(clinic_id=clinic_id, name=name, scopes=" ".join(s for s in API_SCOPES if s in scopes),
                   token_hash=digest(token))
    session.add(row)
    session.flush()
    return row, token


def bearer_token() -> str | None:
    """The token of the request's `Authorization: Bearer ...` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def rate_limit_key() -> str:
    """Requests are counted per token, or per address for one without a token this server knows
    (so that guessing tokens is limited too)."""
    caller = known_caller()
    return f"token:{caller.token_id}" if caller else "addr:" + (request.remote_addr or "?")


def known_caller() -> Caller | None:
    """The caller of this request's token, looked up once per request (the rate limit asks first)."""
    if "api_caller" not in g:
        token = bearer_token()
        g.api_caller = _look_up(token) if token else None
    return g.api_caller


def _look_up(token: str) -> Caller | None:
    """The live token's caller; its last use is written at most once a minute."""
    services, now = current_services(), utcnow()
    with read_only(services.sessions()) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        with services.sessions.begin() as session:
            session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return Caller(row.id, row.clinic_id, frozenset(row.scopes.split()))


def _unauthorized(detail: str):
    from ivr.api.problems import problem

    response = problem(401, detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    abort(response)


def authenticate() -> Caller:
    """The caller of this request, or a 401 problem."""
    if not bearer_token():
        _unauthorized("send the clinic's API token as `Authorization: Bearer <token>`")
    caller = known_caller()
    if caller is None:
        _unauthorized("the token is not known, or was revoked")
    return caller


def requires(scope: str):
    """A view that needs a token with `scope`; the caller is in flask.g.caller."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            caller = authenticate()
            if scope not in caller.scopes:
                from ivr.api.problems import problem

                abort(problem(403, f"this token may not do that: it needs the scope {scope}"))
            g.caller = caller
            return view(*args, **kwargs)
        return wrapper
    return decorate
