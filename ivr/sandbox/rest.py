"""The sandbox carrier's REST side: the part of Twilio's 2010-04-01 API that the server uses.

The real twilio.rest.Client talks to it unchanged, through ivr.telephony.RedirectingHttpClient.
Calls are kept in memory in this process: enough to accept and inspect what the server placed.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from ivr.config import is_e164
from ivr.models import utcnow
from ivr.services import current_services

bp = Blueprint("sandbox_rest", __name__, url_prefix="/sandbox/2010-04-01")


@dataclass
class SandboxLedger:
    """Every call the sandbox accepted, newest last."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def ledger() -> SandboxLedger:
    """This app's ledger, created on first use."""
    return current_app.extensions.setdefault("ivr_sandbox", SandboxLedger())


def _error(status: int, code: int, message: str) -> Response:
    """Twilio's error shape, so TwilioRestException carries the same code and message."""
    response = jsonify({"code": code, "message": message, "more_info":
                        f"https://www.twilio.com/docs/errors/{code}", "status": status})
    response.status_code = status
    return response


def _authorised(account_sid: str) -> bool:
    settings = current_services().settings
    auth = request.authorization
    return (auth is not None and auth.type == "basic" and account_sid == settings.twilio_account_sid
            and auth.username == settings.twilio_account_sid
            and secrets.compare_digest(auth.password or "", settings.twilio_auth_token))


@bp.post("/Accounts/<account_sid>/Calls.json")
def create_call(account_sid: str) -> Response:
    """Accept a call like Twilio does: validate, give it a SID, answer 201 with the call resource."""
    if not _authorised(account_sid):
        return _error(401, 20003, "Authenticate")
    form = request.form
    for name in ("To", "From"):
        if not form.get(name):
            return _error(400, 21201 if name == "To" else 21213, f"No '{name}' number is specified")
    if not is_e164(form["To"]):
        return _error(400, 21211, f"Invalid 'To' Phone Number: {form['To']}")
    if not form.get("Url") and not form.get("Twiml"):
        return _error(400, 21205, "Url parameter is required.")
    now = utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000")
    call = {
        "sid": "CA" + secrets.token_hex(16), "account_sid": account_sid,
        "to": form["To"], "from": form["From"], "status": "queued", "direction": "outbound-api",
        "date_created": now, "date_updated": now, "api_version": "2010-04-01",
        "url": form.get("Url"), "status_callback": form.get("StatusCallback"),
        "status_callback_event": form.getlist("StatusCallbackEvent"),
        "machine_detection": form.get("MachineDetection"),
    }
    call["uri"] = f"/2010-04-01/Accounts/{account_sid}/Calls/{call['sid']}.json"
    book = ledger()
    with book.lock:
        book.calls.append(call)
    response = jsonify(call)
    response.status_code = 201
    return response
