"""The only code that talks to the carrier's REST API: a Dialer for calls and CarrierRecordings for
the recordings of callers' answers, each a small interface with a real part and a test double."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.config import Settings
from ivr.errors import (CarrierError, DialError, PermanentDialError, PermanentSendError, RecordingError,
                        SendError, UncertainDialError, UncertainSendError, UnknownToCarrier)

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class CallRequest:
    """What we ask the carrier to do: ring `to` from `from_` and fetch TwiML from `url`."""

    to: str
    from_: str
    url: str
    status_callback: str
    machine_detection: bool = True
    # Asked by the carrier when `url` (or an action URL of the call) fails: a 4xx or 5xx, a
    # timeout, or something that is not TwiML.
    fallback_url: str | None = None


@dataclass(frozen=True)
class CallStatus:
    """What the carrier says of a call now (the fields of Twilio's Call resource that we use)."""

    status: str                     # queued, ringing, in-progress, completed, busy, failed, ...
    answered_by: str | None = None
    duration: int | None = None     # seconds; the carrier gives it once a call has completed


@dataclass(frozen=True)
class CarrierCall:
    """A call the carrier lists: its SID, how it stands, and when it was created."""

    sid: str
    status: str
    answered_by: str | None
    created: dt.datetime


class Dialer(Protocol):
    """Places outbound calls (returns the carrier's call SID) and asks how a call stands."""

    def place_call(self, request: CallRequest) -> str: ...

    def call_status(self, sid: str) -> CallStatus: ...

    def find_calls(self, to: str, from_: str, since: dt.datetime) -> list[CarrierCall]: ...

    def delete_queue(self, sid: str) -> bool: ...


class RedirectingHttpClient(TwilioHttpClient):
    """Sends the Twilio client's requests to another base URL (the sandbox carrier)."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self._base = urlsplit(base_url)

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        path = self._base.path.rstrip("/") + parts.path
        rewritten = urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))
        return super().request(method, rewritten, *args, **kwargs)


class TwilioDialer:
    """Dialer over twilio.rest.Client. Errors say whether a retry is safe: refusals (4xx) are
    permanent; 429, 503 and failures to connect never reached the carrier's call logic and are
    retried; a read timeout or another 5xx may hide a call that was placed, so it is uncertain."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def place_call(self, request: CallRequest) -> str:
        extra = {"machine_detection": "DetectMessageEnd"} if request.machine_detection else {}
        if request.fallback_url:
            extra.update(fallback_url=request.fallback_url, fallback_method="POST")
        return _create(lambda: self._client.calls.create(
            to=request.to, from_=request.from_, url=request.url, method="POST",
            status_callback=request.status_callback, status_callback_method="POST",
            status_callback_event=STATUS_EVENTS, **extra), "call", DialError, PermanentDialError,
            UncertainDialError).sid

    def call_status(self, sid: str) -> CallStatus:
        """The call as the carrier has it now; CarrierError when it cannot say."""
        try:
            call = self._client.calls(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                raise UnknownToCarrier(f"carrier has no call {sid}") from exc
            raise CarrierError(f"carrier answered HTTP {exc.status}, code {exc.code}") from exc
        except (TwilioException, OSError) as exc:
            raise CarrierError(f"carrier did not answer: {type(exc).__name__}") from exc
        return CallStatus(call.status, call.answered_by or None,
                          int(call.duration) if call.duration else None)

    def find_calls(self, to: str, from_: str, since: dt.datetime) -> list[CarrierCall]:
        """Calls from `from_` to `to` created at or after `since`, oldest first: those that started
        then (Twilio's StartTime filter, which it documents by the day, so each is checked here by
        its creation time) and those still queued (no start time yet). CarrierError when the
        carrier cannot say."""
        since = since.astimezone(dt.timezone.utc)
        try:
            listed = [*self._client.calls.list(to=to, from_=from_, start_time_after=since, limit=50),
                      *self._client.calls.list(to=to, from_=from_, status="queued", limit=50)]
        except TwilioRestException as exc:
            raise CarrierError(f"carrier answered HTTP {exc.status}, code {exc.code}") from exc
        except (TwilioException, OSError) as exc:
            raise CarrierError(f"carrier did not answer: {type(exc).__name__}") from exc
        found = {call.sid: CarrierCall(call.sid, call.status, call.answered_by or None, call.date_created)
                 for call in listed if call.date_created is not None and call.date_created >= since}
        return sorted(found.values(), key=lambda call: call.created)

    def delete_queue(self, sid: str) -> bool:
        """Delete a queue a caller waited in (Twilio keeps queues until deleted); False when
        the carrier has no such queue, CarrierError when it cannot say."""
        try:
            return bool(self._client.queues(sid).delete())
        except TwilioRestException as exc:
            if exc.status == 404:
                return False
            raise CarrierError(f"carrier answered HTTP {exc.status}, code {exc.code}") from exc
        except (TwilioException, OSError) as exc:
            raise CarrierError(f"carrier did not answer: {type(exc).__name__}") from exc


def _create(create, what: str, retryable: type, permanent: type, uncertain: type):
    """Run a carrier create request and say, by the error raised, whether a retry is safe:
    refusals (4xx) are permanent; 429, 503 and failures to connect never reached the carrier's
    logic and may be retried; a read timeout or another 5xx may hide what was created, so it is
    uncertain and must not be retried on our own."""
    try:
        return create()
    except TwilioRestException as exc:
        if exc.status in (429, 503):
            raise retryable(f"carrier busy: HTTP {exc.status}, code {exc.code}") from exc
        if 400 <= exc.status < 500:
            error = permanent(f"carrier refused the {what}: HTTP {exc.status}, code {exc.code}")
            error.code = exc.code
            raise error from exc
        raise uncertain(f"carrier error: HTTP {exc.status}, code {exc.code}") from exc
    except (TwilioException, OSError) as exc:
        if _never_reached_carrier(exc):
            raise retryable(f"carrier unreachable: {type(exc).__name__}") from exc
        # A read timeout or a connection lost after sending: the carrier may have it.
        raise uncertain(f"carrier did not answer: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class TextRequest:
    """A text we ask the carrier to deliver, and where it reports how delivery went."""

    to: str
    from_: str
    body: str
    status_callback: str


class Messenger(Protocol):
    """Sends text messages; returns the carrier's message SID."""

    def send_text(self, request: TextRequest) -> str: ...


class TwilioMessenger:
    """Messenger over twilio.rest.Client (Messages.json), with the Dialer's error rules."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def send_text(self, request: TextRequest) -> str:
        return _create(lambda: self._client.messages.create(
            to=request.to, from_=request.from_, body=request.body, status_callback=request.status_callback),
            "text", SendError, PermanentSendError, UncertainSendError).sid


def make_messenger(settings: Settings) -> Messenger:
    """The real Messenger: Twilio itself, or the sandbox carrier reached with the same client."""
    return TwilioMessenger(carrier_client(settings))


@dataclass
class RecordingMessenger:
    """Test double: remembers every text and answers with made-up SIDs (or a given error)."""

    requests: list[TextRequest] = field(default_factory=list)
    fail_with: Exception | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send_text(self, request: TextRequest) -> str:
        with self._lock:
            if self.fail_with is not None:
                raise self.fail_with
            self.requests.append(request)
            return f"SM{next(self._ids):032x}"


def _never_reached_carrier(exc: BaseException) -> bool:
    """True only when no connection was made, so the carrier cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)  # refused, unresolvable


def carrier_client(settings: Settings) -> Client:
    """twilio.rest.Client for Twilio itself, or for the sandbox carrier (the same client)."""
    if settings.twilio_api_url:
        http_client = RedirectingHttpClient(settings.twilio_api_url, timeout=10)
    elif settings.carrier == "sandbox":
        http_client = RedirectingHttpClient(settings.public_base_url + "/sandbox", timeout=10)
    else:
        http_client = TwilioHttpClient(timeout=10)
    return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client)


def make_dialer(settings: Settings) -> Dialer:
    """The real Dialer: Twilio itself, or the sandbox carrier reached with the same client."""
    return TwilioDialer(carrier_client(settings))


TWILIO_API = "https://api.twilio.com/"
# Twilio may answer a media URL with a redirect to its own storage; nothing else is followed.
CARRIER_MEDIA_HOSTS = ("twilio.com", "twiliocdn.com")
MAX_MEDIA_REDIRECTS = 3


def carrier_api_base(settings: Settings) -> str:
    """Where recordings may come from: our credentials are sent nowhere else."""
    if settings.twilio_api_url:
        return settings.twilio_api_url.rstrip("/") + "/"
    if settings.carrier == "sandbox":
        return f"{settings.public_base_url}/sandbox/"
    return TWILIO_API


class CarrierRecordings(Protocol):
    """Recordings of callers' answers, held by the carrier until we delete them."""

    def fetch(self, url: str) -> bytes:
        """The audio at a RecordingUrl (raises RecordingError)."""

    def delete(self, sid: str) -> None:
        """Delete a recording at the carrier; one already gone counts as deleted (raises
        RecordingError when the carrier may still hold it)."""

    def list_for_call(self, call_sid: str) -> list[str]:
        """The SIDs of every recording the carrier still holds for a call (raises RecordingError)."""


class TwilioRecordings:
    """CarrierRecordings over Twilio's REST API: audio fetched through one pooled, thread-safe
    connection pool with the account's credentials (only from the carrier's API host), deleted
    with twilio.rest.Client."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._base = carrier_api_base(settings)
        self._client = client or carrier_client(settings)
        self._headers = urllib3.make_headers(
            basic_auth=f"{settings.twilio_account_sid}:{settings.twilio_auth_token}")
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=8, retries=False,
                                         timeout=urllib3.Timeout(connect=2.0, read=5.0))

    def fetch(self, url: str) -> bytes:
        if not url.startswith(self._base):
            raise RecordingError("recording URL is not on the carrier's API host; not fetched")
        headers = self._headers
        for _hop in range(MAX_MEDIA_REDIRECTS + 1):
            try:
                response = self._pool.request("GET", url, headers=headers, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                raise RecordingError(f"recording not fetched: {type(exc).__name__}") from None
            if response.status not in (301, 302, 303, 307, 308):
                break
            url = urljoin(url, response.headers.get("Location", ""))
            if not self._may_follow(url):
                raise RecordingError("recording redirected off the carrier's hosts; not followed")
            if urlsplit(url).netloc != urlsplit(self._base).netloc:
                headers = {}  # the account's credentials go to the API host only
        else:
            raise RecordingError("recording not fetched: too many redirects")
        if response.status != 200:
            raise RecordingError(f"recording not fetched: HTTP {response.status}")
        return response.data

    def _may_follow(self, url: str) -> bool:
        """A redirect stays on the API host, or goes over https to one of the carrier's media hosts."""
        parts, base = urlsplit(url), urlsplit(self._base)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return True
        host = parts.hostname or ""
        return parts.scheme == "https" and any(host == h or host.endswith("." + h) for h in CARRIER_MEDIA_HOSTS)

    def delete(self, sid: str) -> None:
        try:
            self._client.recordings(sid).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                return  # already gone: that is what we wanted
            raise RecordingError(f"recording not deleted: HTTP {exc.status}, code {exc.code}") from None
        except (TwilioException, OSError) as exc:
            raise RecordingError(f"recording not deleted: {type(exc).__name__}") from None

    def list_for_call(self, call_sid: str) -> list[str]:
        try:
            return [recording.sid for recording in self._client.recordings.list(call_sid=call_sid)]
        except TwilioRestException as exc:
            raise RecordingError(f"recordings not listed: HTTP {exc.status}, code {exc.code}") from None
        except (TwilioException, OSError) as exc:
            raise RecordingError(f"recordings not listed: {type(exc).__name__}") from None


@dataclass
class MemoryRecordings:
    """Test double: serves the recordings a test gives it and remembers what was deleted."""

    audio: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    fail_with: Exception | None = None
    by_call: dict[str, list[str]] = field(default_factory=dict)  # what the carrier holds per call
    listed: list[str] = field(default_factory=list)              # calls it was asked about

    def fetch(self, url: str) -> bytes:
        if url not in self.audio:
            raise RecordingError("recording not fetched: HTTP 404")
        return self.audio[url]

    def delete(self, sid: str) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.deleted.append(sid)

    def list_for_call(self, call_sid: str) -> list[str]:
        if self.fail_with is not None:
            raise self.fail_with
        self.listed.append(call_sid)
        return [sid for sid in self.by_call.get(call_sid, []) if sid not in self.deleted]


@dataclass
class RecordingDialer:
    """Test double: remembers every request and answers with made-up SIDs (or a given error);
    asked for a call's status, answers what `statuses` holds for the SID (a CallStatus, or an
    exception to raise), and CarrierError for a SID it was not told about, as for no such call."""

    requests: list[CallRequest] = field(default_factory=list)
    fail_with: Exception | None = None
    statuses: dict[str, CallStatus | Exception] = field(default_factory=dict)
    status_requests: list[str] = field(default_factory=list)
    deleted_queues: list[str] = field(default_factory=list)
    carrier_calls: list[CarrierCall] | Exception = field(default_factory=list)  # what find_calls lists
    searches: list[tuple[str, str, dt.datetime]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def place_call(self, request: CallRequest) -> str:
        with self._lock:
            if self.fail_with is not None:
                raise self.fail_with
            self.requests.append(request)
            return f"CA{next(self._ids):032x}"

    def call_status(self, sid: str) -> CallStatus:
        with self._lock:
            self.status_requests.append(sid)
            answer = self.statuses.get(sid, UnknownToCarrier(f"carrier has no call {sid}"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def find_calls(self, to: str, from_: str, since: dt.datetime) -> list[CarrierCall]:
        with self._lock:
            self.searches.append((to, from_, since))
            if isinstance(self.carrier_calls, Exception):
                raise self.carrier_calls
            return [call for call in self.carrier_calls if call.created >= since]

    def delete_queue(self, sid: str) -> bool:
        with self._lock:
            self.deleted_queues.append(sid)
        return True
