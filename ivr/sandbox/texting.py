"""The sandbox carrier's text messages: delivering our texts to sandbox phones (with the status
callbacks Twilio sends), the carrier's own keyword handling (STOP blocks the number pair until
START, and the carrier answers those words itself), scripted patients texting back, and texts a
sandbox phone sends to one of our numbers, signed as Twilio signs them."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import requests
from twilio.request_validator import RequestValidator

from ivr.messaging.keywords import CARRIER_HELP, CARRIER_OPT_IN, CARRIER_OPT_OUT, normalise
from ivr.messaging.segments import count
from ivr.models import utcnow
from ivr.sandbox.script import Script
from ivr.sandbox.store import SandboxStore

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 15
# What the carrier answers to its own keywords (Twilio's defaults, in substance).
CARRIER_ANSWERS = {"opt_out": "You have successfully been unsubscribed. You will not receive any more "
                              "messages from this number. Reply START to resubscribe.",
                   "opt_in": "You have successfully been re-subscribed to messages from this number. "
                             "Reply HELP for help. Reply STOP to unsubscribe.",
                   "help": "Reply STOP to unsubscribe. Msg&Data Rates May Apply."}
FAILURE_CODES = {"undelivered": 30003, "failed": 30006}  # unreachable handset; landline or unreachable


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def message_resource(sid: str, account_sid: str, from_: str, to: str, body: str, direction: str,
                     status: str) -> dict[str, Any]:
    """A text as Twilio's REST API shows it."""
    return {"sid": sid, "account_sid": account_sid, "from": from_, "to": to, "body": body,
            "direction": direction, "status": status, "num_segments": str(count(body).count),
            "error_code": None, "api_version": "2010-04-01",
            "date_created": utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"}


class Texting:
    """Texts through the sandbox carrier; deliveries run on the carrier's worker threads."""

    def __init__(self, store: SandboxStore, auth_token: str, account_sid: str, inbound_url: str) -> None:
        self.store, self.validator = store, RequestValidator(auth_token)
        self.account_sid, self.inbound_url = account_sid, inbound_url

    def deliver(self, sid: str, status_callback: str | None, script: Script) -> None:
        """Carry a text to a sandbox phone: sent, then delivered (or not, as its script says), each
        reported to the status callback; then the phone texts back what its script says."""
        message = self.store.message(sid)
        final = script.text_status if script.text_status in FAILURE_CODES else "delivered"
        for status in ("sent", final):
            self.store.update_message(sid, status=status, error_code=FAILURE_CODES.get(status))
            if status_callback:
                self._post(status_callback, {
                    "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                    "From": message["from"], "To": message["to"],
                    **({"ErrorCode": str(FAILURE_CODES[status])} if status in FAILURE_CODES else {})})
        if final == "delivered":
            answer = self.store.next_text_reply(message["to"], script)
            if answer is not None:
                self.text_in(message["to"], message["from"], answer)

    def text_in(self, phone: str, number: str, body: str) -> dict[str, Any]:
        """A sandbox phone texts one of our numbers: the carrier acts on its own keywords first
        (and answers them), then passes the text to our webhook. Returns the text as kept."""
        sid = new_message_sid()
        message = message_resource(sid, self.account_sid, phone, number, body, "inbound", "received")
        self.store.save_message(message)
        word = normalise(body)
        if word in CARRIER_OPT_OUT or word in CARRIER_OPT_IN or word in CARRIER_HELP:
            kind = "opt_out" if word in CARRIER_OPT_OUT else "opt_in" if word in CARRIER_OPT_IN else "help"
            if kind != "help":
                self.store.set_carrier_opt_out(phone, number, kind == "opt_out")
            self.store.save_message(message_resource(new_message_sid(), self.account_sid, number, phone,
                                                     CARRIER_ANSWERS[kind], "outbound-reply", "delivered"))
        answer = self._post(self.inbound_url, {
            "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "From": phone, "To": number, "Body": body,
            "NumMedia": "0", "NumSegments": str(count(body).count), "SmsStatus": "received"})
        self.store.update_message(sid, webhook_answer=answer)
        return self.store.message(sid)

    def _post(self, url: str, params: dict[str, str]) -> str:
        """A webhook signed exactly as Twilio signs it; the HTTP status (or why there was none)."""
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", **params}
        try:
            response = requests.post(url, data=params, timeout=WEBHOOK_TIMEOUT,
                                     headers={"X-Twilio-Signature": self.validator.compute_signature(url, params)})
        except requests.RequestException as exc:
            log.warning("sandbox text webhook to %s failed: %s", url, type(exc).__name__)
            return type(exc).__name__
        return str(response.status_code)
