"""The Dialer over the real twilio.rest.Client: which carrier failures may be retried."""

import socket
import time

import pytest
from flask import Flask, jsonify

from ivr.errors import CarrierError, DialError, PermanentDialError, UncertainDialError
from ivr.sandbox.calling import serve
from ivr.telephony import CallRequest, CallStatus, RedirectingHttpClient, TwilioDialer
from twilio.rest import Client

REQUEST = CallRequest(to="+12125550143", from_="+12125550100", url="https://ivr.example.test/a",
                      status_callback="https://ivr.example.test/s")


@pytest.fixture
def carrier():
    """A stand-in carrier whose answer each test chooses; it counts the calls it received."""
    behaviour = {"status": 201, "delay": 0.0}
    received = []

    def make(_base):
        app = Flask("carrier")

        @app.post("/2010-04-01/Accounts/<sid>/Calls.json")
        def create(sid):
            received.append(sid)
            time.sleep(behaviour["delay"])
            body = {"sid": "CA" + "e" * 32, "status": "queued"} if behaviour["status"] == 201 else \
                {"code": 20001, "message": "no", "status": behaviour["status"]}
            return jsonify(body), behaviour["status"]

        @app.get("/2010-04-01/Accounts/<account>/Calls/<sid>.json")
        def fetch(account, sid):
            received.append(sid)
            time.sleep(behaviour["delay"])
            if behaviour["status"] != 201:
                return jsonify({"code": 20404, "message": "no", "status": behaviour["status"]}), behaviour["status"]
            # Twilio's Call resource: the duration is a string of seconds.
            return jsonify({"sid": sid, "status": "completed", "duration": "42", "answered_by": "human"})

        return app

    with serve(make) as (_app, base):
        dialer = TwilioDialer(Client("AC" + "0" * 32, "t", http_client=RedirectingHttpClient(base, timeout=0.5)))
        yield dialer, behaviour, received


def test_a_placed_call_returns_its_sid(carrier):
    dialer, _, received = carrier
    assert dialer.place_call(REQUEST) == "CA" + "e" * 32 and len(received) == 1


@pytest.mark.parametrize("status,error", [(400, PermanentDialError), (404, PermanentDialError),
                                          (429, DialError), (503, DialError), (500, UncertainDialError)])
def test_carrier_answers_decide_retry(carrier, status, error):
    dialer, behaviour, _ = carrier
    behaviour["status"] = status
    with pytest.raises(error) as raised:
        dialer.place_call(REQUEST)
    if error is DialError:
        assert not isinstance(raised.value, (PermanentDialError, UncertainDialError))


def test_a_read_timeout_is_uncertain_because_the_call_may_exist(carrier):
    dialer, behaviour, received = carrier
    behaviour["delay"] = 1.5
    with pytest.raises(UncertainDialError):
        dialer.place_call(REQUEST)
    assert len(received) == 1  # the carrier did get the request


def test_a_refused_connection_is_safe_to_retry():
    # The port stays bound (so no other process can take it) but never listens: connections to
    # it are refused for as long as the test runs.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        dialer = TwilioDialer(Client("AC" + "0" * 32, "t",
                                     http_client=RedirectingHttpClient(f"http://127.0.0.1:{port}", timeout=2)))
        with pytest.raises(DialError) as raised:
            dialer.place_call(REQUEST)
    assert not isinstance(raised.value, UncertainDialError)


def test_a_calls_status_is_fetched_from_the_carrier(carrier):
    dialer, _, received = carrier
    assert dialer.call_status("CA" + "1" * 32) == CallStatus("completed", "human", 42)
    assert received == ["CA" + "1" * 32]


@pytest.mark.parametrize("status,delay", [(404, 0.0), (500, 0.0), (503, 0.0), (201, 1.5)])
def test_a_carrier_that_cannot_say_how_a_call_stands_raises_carrier_error(carrier, status, delay):
    """Unknown SIDs, carrier errors and timeouts alike: asking again later is safe."""
    dialer, behaviour, _ = carrier
    behaviour.update(status=status, delay=delay)
    with pytest.raises(CarrierError):
        dialer.call_status("CA" + "1" * 32)


@pytest.fixture
def media_carrier():
    """A stand-in carrier that serves a recording directly, through a redirect on its own host,
    or through a redirect to another host; it notes who sent credentials."""
    from flask import redirect, request

    seen = []

    def make(_base):
        app = Flask("media")

        @app.get("/2010-04-01/Accounts/<sid>/Recordings/<rec>")
        def media(sid, rec):
            seen.append((rec, request.authorization is not None))
            if rec == "REhop":
                return redirect(f"/2010-04-01/Accounts/{sid}/Recordings/REdirect", code=302)
            if rec == "REaway":
                return redirect("https://elsewhere.example/steal", code=302)
            return b"RIFFaudio", 200, {"Content-Type": "audio/x-wav"}

        return app

    with serve(make) as (_app, base):
        from ivr.config import Settings
        from ivr.telephony import TwilioRecordings

        settings = Settings(env="test", twilio_account_sid="AC" + "0" * 32, twilio_auth_token="t",
                            twilio_api_url=base)
        yield TwilioRecordings(settings), f"{base}/2010-04-01/Accounts/{'AC' + '0' * 32}/Recordings", seen


def test_a_recording_is_fetched_with_the_accounts_credentials_and_through_a_redirect_on_the_api_host(media_carrier):
    recordings, base, seen = media_carrier
    assert recordings.fetch(f"{base}/REdirect") == b"RIFFaudio"
    assert recordings.fetch(f"{base}/REhop") == b"RIFFaudio"
    assert seen == [("REdirect", True), ("REhop", True), ("REdirect", True)]


def test_a_redirect_off_the_carriers_hosts_is_not_followed(media_carrier):
    from ivr.errors import RecordingError

    recordings, base, seen = media_carrier
    with pytest.raises(RecordingError, match="redirected off the carrier's hosts"):
        recordings.fetch(f"{base}/REaway")
    with pytest.raises(RecordingError, match="not on the carrier's API host"):
        recordings.fetch("https://elsewhere.example/2010-04-01/Recordings/RE1")


def test_only_https_twilio_media_hosts_are_followed_off_the_api_host():
    from ivr.config import Settings
    from ivr.telephony import TwilioRecordings

    recordings = TwilioRecordings(Settings(env="test", twilio_account_sid="AC" + "0" * 32, twilio_auth_token="t"))
    assert recordings._may_follow("https://media.twiliocdn.com/AC0/abc")
    assert recordings._may_follow("https://api.twilio.com/2010-04-01/x")
    assert not recordings._may_follow("http://media.twiliocdn.com/AC0/abc")
    assert not recordings._may_follow("https://twiliocdn.com.evil.example/abc")
