"""Twilio request signatures: every /twilio/ route answers 403 to a missing or wrong one."""

from __future__ import annotations

import logging

from flask import Request, abort, request
from twilio.request_validator import RequestValidator

from ivr import twilio_params
from ivr.services import current_services

log = logging.getLogger(__name__)


def signed_url(req: Request, public_base_url: str) -> str:
    """The URL Twilio signed: the configured public base (behind a TLS proxy) or the one we saw."""
    if not public_base_url:
        return req.url
    query = req.query_string.decode("latin-1")
    return public_base_url + req.path + (f"?{query}" if query else "")


def require_twilio_signature() -> None:
    """Abort with 403 unless X-Twilio-Signature matches this request (before_request hook)."""
    settings = current_services().settings
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        log.warning("rejected unsigned request to %s", request.path)
        abort(403)
    url = signed_url(request, settings.public_base_url)
    validator = RequestValidator(settings.twilio_auth_token)
    if request.mimetype == "application/json":
        # JSON bodies are covered by a bodySHA256 query parameter; without one nothing is signed.
        if "bodySHA256" not in request.args:
            log.warning("rejected JSON request to %s without bodySHA256", request.path)
            abort(403)
        params = request.get_data(as_text=True)
    else:
        params = request.form
    try:
        valid = validator.validate(url, params, signature)
    except (TypeError, ValueError):  # a malformed signature or body is simply not a valid one
        valid = False
    if not valid:
        log.warning("rejected request to %s with a wrong signature", request.path)
        abort(403)
    if request.form.get("AccountSid") != settings.twilio_account_sid:
        # Also what a replay with a parameter folded into AccountSid's value looks like.
        log.warning("rejected request to %s for another account", request.path)
        abort(403)
    _refuse_unexpected_names(settings.twilio_unknown_params)


LAST_RESORT = ("twilio.voice_fallback", "twilio.failover_dial_result")


def _refuse_unexpected_names(policy: str) -> None:
    """400 for a signed request carrying a name its route never gets, or a name twice (the
    signature cannot tell where a name ends and its value begins). Names are logged, not values."""
    names = [name for name, _ in request.form.items(multi=True)]
    odd = twilio_params.unexpected(request.endpoint or "", names)
    if not odd:
        return
    if (request.endpoint or "").startswith("twilio_sms.") or request.endpoint in LAST_RESORT:
        # Twilio does not retry an inbound text: refusing one for a name it added without notice
        # would lose it (an opt-out, perhaps). Texts change nothing by a name they carry; nor do
        # the routes a failed call falls back to, whose answer is the caller's last.
        policy = "log"
    log.warning("request to %s carries parameters Twilio does not send there: %s%s", request.path,
                ", ".join(name[:40] for name in odd[:10]), "" if policy == "refuse" else " (allowed: log only)")
    if policy == "refuse":
        abort(400, description="unexpected or repeated parameters: " + ", ".join(odd[:10]))
