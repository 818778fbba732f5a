"""The sandbox carrier: accepts calls like Twilio's REST API and plays them in the background."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from flask import current_app
from redis import Redis

from ivr.config import Settings
from ivr.models import utcnow
from ivr.sandbox.interpreter import CallPlayer, PlacedCall, Transcript
from ivr.sandbox.script import Script
from ivr.sandbox.store import SandboxStore
from ivr.sandbox.texting import Texting

log = logging.getLogger(__name__)


class SandboxCarrier:
    """Rings sandbox phones: each call is played in a worker thread against our own webhooks."""

    def __init__(self, settings: Settings, redis: Redis, max_calls: int = 8) -> None:
        self.settings = settings
        self.store = self.store_for(settings, redis)
        self.player = CallPlayer(settings.twilio_auth_token, recordings=self.store, control=self.store,
                                 on_turn=lambda transcript: self.store.save_transcript(transcript, False),
                                 queues=self.store)
        self.executor = ThreadPoolExecutor(max_workers=max_calls, thread_name_prefix="sandbox-call")
        self.texting = Texting(self.store, settings.twilio_auth_token, settings.twilio_account_sid,
                               f"{settings.public_base_url}/twilio/sms/inbound")

    @staticmethod
    def store_for(settings: Settings, redis: Redis) -> SandboxStore:
        """The sandbox's shared memory as seen from any process with the same settings."""
        base = f"{settings.public_base_url}/sandbox/2010-04-01/Accounts/{settings.twilio_account_sid}"
        return SandboxStore(redis, recordings_base_url=f"{base}/Recordings")

    def start(self, call: PlacedCall, script: Script | None = None) -> Future:
        """Play the call in the background; the phone's script unless one is given."""
        return self.executor.submit(self.play, call, script)

    def play(self, call: PlacedCall, script: Script | None = None) -> Transcript:
        """Play a call to its end and remember how it went."""
        script = script or self.store.phone(call.to if call.direction != "inbound" else call.from_)
        started = twilio_date(utcnow())
        self.store.update_call(call.sid, status="in-progress", start_time=started, date_updated=started)
        try:
            transcript = self.player.play(call, script)
        except Exception:
            log.exception("sandbox call %s failed", call.sid)
            self.store.update_call(call.sid, status="failed", date_updated=twilio_date(utcnow()))
            raise
        self.store.update_call(call.sid, **ended(transcript))
        self.store.save_transcript(transcript, done=True)
        log.info("sandbox call %s ended: %s", call.sid, transcript.status)
        return transcript

    def send_text(self, sid: str, status_callback: str | None) -> Future:
        """Carry a text to its sandbox phone in the background (see texting.Texting.deliver)."""
        message = self.store.message(sid)
        return self.executor.submit(self.texting.deliver, sid, status_callback, self.store.phone(message["to"]))

    def inbound(self, from_: str, to: str) -> PlacedCall:
        """A call from a sandbox phone to one of our numbers, answered by our inbound webhook."""
        call = PlacedCall(sid=new_call_sid(), account_sid=self.settings.twilio_account_sid,
                          from_=from_, to=to, direction="inbound",
                          url=f"{self.settings.public_base_url}/twilio/voice/inbound",
                          # As the clinic's number is set up at Twilio: its Fallback URL too.
                          fallback_url=f"{self.settings.public_base_url}/twilio/voice/fallback",
                          status_callback=f"{self.settings.public_base_url}/twilio/status",
                          status_callback_events=("initiated", "ringing", "answered", "completed"))
        self.store.save_call(resource(call))
        return call


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def resource(call: PlacedCall, status: str = "queued") -> dict:
    """The call as Twilio's REST API shows it."""
    now = twilio_date(utcnow())
    return {"sid": call.sid, "account_sid": call.account_sid, "to": call.to, "from": call.from_,
            "direction": call.direction, "status": status, "api_version": "2010-04-01",
            "url": call.url, "status_callback": call.status_callback,
            "status_callback_event": list(call.status_callback_events),
            "machine_detection": call.machine_detection, "duration": None, "answered_by": None,
            "date_created": now, "date_updated": now, "start_time": None, "end_time": None,
            "uri": f"/2010-04-01/Accounts/{call.account_sid}/Calls/{call.sid}.json"}


def ended(transcript: Transcript) -> dict:
    """What Twilio's Call resource says of a call that has ended: the duration (a string of
    seconds) and end time only when it completed; empty for busy, failed and unanswered calls."""
    now = twilio_date(utcnow())
    completed = transcript.status == "completed"
    return {"status": transcript.status, "answered_by": transcript.answered_by, "date_updated": now,
            "duration": str(transcript.duration) if completed else None,
            "end_time": now if completed else None}


def twilio_date(at: dt.datetime) -> str:
    """A time as Twilio's REST API writes it (RFC 2822, UTC)."""
    return at.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


_creating = threading.Lock()


def carrier() -> SandboxCarrier:
    """This app's sandbox carrier, created once on first use (requests arrive on many threads)."""
    found = current_app.extensions.get("ivr_sandbox")
    if found is None:
        with _creating:
            found = current_app.extensions.get("ivr_sandbox")
            if found is None:
                services = current_app.extensions["ivr"]
                found = SandboxCarrier(services.settings, services.redis)
                current_app.extensions["ivr_sandbox"] = found
    return found
