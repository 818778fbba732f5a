"""The sandbox carrier's HTTP side.

Under /sandbox/2010-04-01: the part of Twilio's REST API that the server uses (Calls create, list,
fetch and update; Messages create; Recordings list, fetch, media and delete), with Basic auth and Twilio's error shape, so the
real twilio.rest.Client talks to it unchanged (through ivr.telephony.RedirectingHttpClient).
Under /sandbox/phones and /sandbox/calls: sandbox-only controls for scripts and transcripts.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from email.utils import parsedate_to_datetime
from functools import wraps

from flask import Blueprint, Response, jsonify, request

from ivr.config import is_e164
from ivr.sandbox import script as scripts
from ivr.sandbox.carrier import carrier, new_call_sid, resource
from ivr.sandbox.interpreter import PlacedCall
from ivr.sandbox.texting import message_resource, new_message_sid
from ivr.services import current_services

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
API = "/2010-04-01/Accounts/<account_sid>"


def _error(status: int, code: int, message: str) -> Response:
    """Twilio's error shape, so TwilioRestException carries the same code and message."""
    response = jsonify({"code": code, "message": message, "status": status,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}"})
    response.status_code = status
    return response


def _not_found() -> Response:
    return _error(404, 20404, f"The requested resource {request.path} was not found")


def _authorised(account_sid: str | None = None) -> bool:
    settings = current_services().settings
    auth = request.authorization
    return (auth is not None and auth.type == "basic"
            and account_sid in (None, settings.twilio_account_sid)
            and auth.username == settings.twilio_account_sid
            and secrets.compare_digest(auth.password or "", settings.twilio_auth_token))


def basic_auth(view):
    """Twilio's 401 (code 20003) unless the request carries the account's credentials."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not _authorised(kwargs.get("account_sid")):
            return _error(401, 20003, "Authenticate")
        return view(*args, **kwargs)
    return wrapper


def _created(body: dict) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


@bp.post(f"{API}/Calls.json")
@basic_auth
def create_call(account_sid: str) -> Response:
    """Accept a call like Twilio: validate, give it a SID, answer 201, then ring the phone."""
    form = request.form
    for name, code in (("To", 21201), ("From", 21213)):
        if not form.get(name):
            return _error(400, code, f"No '{name}' number is specified")
    if not is_e164(form["To"]):
        return _error(400, 21211, f"Invalid 'To' Phone Number: {form['To']}")
    if not form.get("Url"):
        return _error(400, 21205, "Url parameter is required.")
    call = PlacedCall(sid=new_call_sid(), account_sid=account_sid, from_=form["From"], to=form["To"],
                      direction="outbound-api", url=form["Url"], method=form.get("Method", "POST"),
                      status_callback=form.get("StatusCallback"),
                      status_callback_events=tuple(form.getlist("StatusCallbackEvent")),
                      machine_detection=form.get("MachineDetection"), fallback_url=form.get("FallbackUrl"),
                      fallback_method=form.get("FallbackMethod", "POST"))
    body = resource(call)
    sandbox = carrier()
    sandbox.store.save_call(body)
    sandbox.start(call)
    # A slow carrier: the call is placed and rings, but the dial's answer comes late (a worker
    # that dies meanwhile never learns the call's SID).
    delay = sandbox.store.phone(call.to).dial_delay
    if delay:
        time.sleep(delay)
    return _created(body)


@bp.get(f"{API}/Calls.json")
@basic_auth
def list_calls(account_sid: str) -> Response:
    """The account's calls, newest first, filtered as Twilio filters them: To, From, Status, and
    StartTime> / StartTime< (a time, or a day meaning its midnight UTC; a call not yet started
    has no start time and matches neither). One page of Twilio's list shape."""
    args = request.args
    try:
        after, before = (_twilio_time(args[name]) if args.get(name) else None for name in ("StartTime>", "StartTime<"))
    except ValueError:
        return _error(400, 20001, "Invalid StartTime filter: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
    found = []
    for call in reversed(carrier().store.calls()):
        if call.get("account_sid") != account_sid:
            continue
        if any(args.get(name) and call.get(key) != args[name] for name, key in
               (("To", "to"), ("From", "from"), ("Status", "status"))):
            continue
        started = parsedate_to_datetime(call["start_time"]) if call.get("start_time") else None
        if (after or before) and (started is None or (after and started < after) or (before and started >= before)):
            continue
        found.append(call)
    uri = f"/2010-04-01/Accounts/{account_sid}/Calls.json"
    return jsonify({"calls": found, "page": 0, "page_size": max(len(found), 50), "uri": uri,
                    "first_page_uri": f"{uri}?Page=0", "next_page_uri": None, "previous_page_uri": None})


def _twilio_time(text: str) -> dt.datetime:
    """A StartTime filter's value: YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM:SSZ."""
    for shape in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, shape).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    raise ValueError(text)


@bp.get(f"{API}/Calls/<sid>.json")
@basic_auth
def fetch_call(account_sid: str, sid: str) -> Response:
    call = carrier().store.call(sid)
    return jsonify(call) if call else _not_found()


@bp.post(f"{API}/Calls/<sid>.json")
@basic_auth
def update_call(account_sid: str, sid: str) -> Response:
    """Hang up (Status=completed|canceled) or redirect (Url=) a live call."""
    store = carrier().store
    call = store.call(sid)
    if call is None:
        return _not_found()
    changes = {k: request.form[k] for k in ("Status", "Url", "Method") if request.form.get(k)}
    if changes.get("Status") not in (None, "completed", "canceled"):
        return _error(400, 21220, "Invalid call state: Status must be completed or canceled")
    store.request_update(sid, changes)
    return jsonify(call)


@bp.post(f"{API}/Messages.json")
@basic_auth
def create_message(account_sid: str) -> Response:
    """Accept a text like Twilio: refuse what Twilio refuses (a bad number, a landline, a number
    that opted out at the carrier), answer 201, then deliver it to the sandbox phone."""
    form = request.form
    to, from_ = form.get("To", ""), form.get("From", "")
    if not to or not is_e164(to):
        return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not form.get("Body"):
        return _error(400, 21602, "Message body is required.")
    if len(form["Body"]) > 1600:
        return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    sandbox = carrier()
    if sandbox.store.carrier_opted_out(to, from_):
        return _error(400, 21610, "Attempt to send to unsubscribed recipient")
    if sandbox.store.phone(to).text_status == "landline":
        return _error(400, 21614, f"'To' number {to} is not a valid mobile number")
    message = message_resource(new_message_sid(), account_sid, from_, to, form["Body"], "outbound-api", "queued")
    sandbox.store.save_message(message)
    sandbox.send_text(message["sid"], form.get("StatusCallback"))
    return _created(message)


def _recording(account_sid: str, sid: str, meta: dict) -> dict:
    """A recording as Twilio's REST API shows it."""
    return {"sid": sid, "account_sid": account_sid, "call_sid": meta["call_sid"], "media_format": "wav",
            "api_version": "2010-04-01", "status": "completed",
            "uri": f"/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.json"}


@bp.get(f"{API}/Recordings.json")
@basic_auth
def list_recordings(account_sid: str) -> Response:
    """Every recording the account still holds (of one call, with CallSid), as one page of
    Twilio's list shape."""
    store, call_sid = carrier().store, request.args.get("CallSid")
    found = [_recording(account_sid, sid, meta) for sid in store.recording_sids()
             if (meta := store.recording_meta(sid)) is not None and call_sid in (None, meta["call_sid"])]
    uri = f"/2010-04-01/Accounts/{account_sid}/Recordings.json"
    return jsonify({"recordings": found, "page": 0, "page_size": max(len(found), 50), "uri": uri,
                    "first_page_uri": f"{uri}?Page=0", "next_page_uri": None, "previous_page_uri": None})


@bp.get(f"{API}/Recordings/<sid>.json")
@basic_auth
def fetch_recording(account_sid: str, sid: str) -> Response:
    meta = carrier().store.recording_meta(sid)
    if meta is None:
        return _not_found()
    return jsonify(_recording(account_sid, sid, meta))


@bp.delete(f"{API}/Recordings/<sid>.json")
@basic_auth
def delete_recording(account_sid: str, sid: str) -> Response:
    """Delete a recording and its audio, as Twilio does: 204, or 404 when there is none."""
    if not carrier().store.delete_recording(sid):
        return _not_found()
    return Response(status=204)


@bp.delete(f"{API}/Queues/<sid>.json")
@basic_auth
def delete_queue(account_sid: str, sid: str) -> Response:
    """Delete a queue, as Twilio does: 204, 404 when there is none, 400 while callers wait in it."""
    deleted = carrier().store.delete_queue(sid)
    if deleted == "missing":
        return _not_found()
    if deleted == "not empty":
        return _error(400, 20001, "Queue is not empty")
    return Response(status=204)


@bp.get(f"{API}/Recordings/<sid>")
@bp.get(f"{API}/Recordings/<sid>.wav")
@basic_auth
def recording_audio(account_sid: str, sid: str) -> Response:
    """The recorded audio, as Twilio serves a RecordingUrl (WAV)."""
    audio = carrier().store.recording(sid)
    if audio is None:
        return _not_found()
    return Response(audio, mimetype="audio/x-wav")


@bp.put("/phones/<number>")
@basic_auth
def set_phone(number: str) -> Response:
    """How the sandbox phone at this number behaves (a caller script as JSON)."""
    if not is_e164(number):
        return _error(400, 21211, f"Invalid Phone Number: {number}")
    try:
        script = scripts.parse(request.get_json(force=True, silent=True), allow_files=False)
    except scripts.ScriptError as exc:
        return _error(400, 21000, str(exc))
    carrier().store.set_phone(number, script)
    return jsonify({"number": number, "script": script.as_dict()})


@bp.get("/calls/<sid>")
@basic_auth
def transcript(sid: str) -> Response:
    """What happened on a sandbox call so far (done: true once it ended)."""
    found = carrier().store.transcript(sid)
    return jsonify(found) if found else _error(404, 20404, f"No transcript for call {sid}")
