"""The sandbox's Twilio-compatible REST API, driven by the real twilio.rest.Client over HTTP."""

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr.sandbox.calling import serve, wait_for_transcript
from ivr.sandbox.carrier import carrier
from ivr.telephony import RedirectingHttpClient
from tests.support import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture
def sandbox(sandbox_app_factory):
    with serve(sandbox_app_factory) as (app, base):
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(f"{base}/sandbox"))
        with app.app_context():
            yield app, base, client, carrier().store


def test_a_created_call_rings_and_can_be_fetched(sandbox):
    app, base, client, store = sandbox
    placed = client.calls.create(to="+12125550143", from_="+12125550100",
                                 url=f"{base}/twilio/voice/step")
    assert placed.sid.startswith("CA") and placed.status == "queued"
    transcript = wait_for_transcript(store, placed.sid, timeout=10)
    # A call our records do not know still hears valid TwiML (signed by the sandbox, so not a 403).
    assert transcript["error"] is None
    assert transcript["turns"][0]["prompts"] == [{"say": "Sorry, something went wrong on our side. "
                                                  "Please call us again later. Goodbye.",
                                                  "language": "en-US"}]
    fetched = client.calls(placed.sid).fetch()
    assert (fetched.sid, fetched.to, fetched.status) == (placed.sid, "+12125550143", "completed")


def test_a_finished_call_is_fetched_as_twilio_shows_it(sandbox):
    """Duration (a string) and end time for a completed call; empty for one that was not answered.
    Our Dialer reads the same fields back."""
    from ivr.errors import CarrierError
    from ivr.sandbox import script as scripts
    from ivr.telephony import CallStatus, TwilioDialer

    app, base, client, store = sandbox
    store.set_phone("+12125550162", scripts.parse({"answer": "busy"}))
    answered = client.calls.create(to="+12125550143", from_="+12125550100", machine_detection="Enable",
                                   url=f"{base}/twilio/voice/step")
    busy = client.calls.create(to="+12125550162", from_="+12125550100", url=f"{base}/twilio/voice/step")
    for call in (answered, busy):
        wait_for_transcript(store, call.sid, timeout=10)
    done = client.calls(answered.sid).fetch()
    assert (done.status, done.answered_by) == ("completed", "human")
    assert done.duration.isdigit() and int(done.duration) > 0
    assert done.date_created <= done.start_time <= done.end_time == done.date_updated
    missed = client.calls(busy.sid).fetch()
    assert (missed.status, missed.duration, missed.end_time, missed.answered_by) == ("busy", None, None, None)
    dialer = TwilioDialer(client)
    assert dialer.call_status(answered.sid) == CallStatus("completed", "human", int(done.duration))
    assert dialer.call_status(busy.sid) == CallStatus("busy")
    with pytest.raises(CarrierError, match="carrier has no call CA"):
        dialer.call_status("CA" + "c" * 32)


def test_update_asks_a_live_call_to_hang_up_and_rejects_other_states(sandbox):
    app, base, client, store = sandbox
    store.save_call({"sid": "CA" + "b" * 32, "to": "+12125550143", "from": "+12125550100",
                     "status": "in-progress"})
    client.calls("CA" + "b" * 32).update(status="completed")
    assert store.pending_update("CA" + "b" * 32) == {"Status": "completed"}
    with pytest.raises(TwilioRestException) as refused:
        client.calls("CA" + "b" * 32).update(status="ringing")
    assert (refused.value.status, refused.value.code) == (400, 21220)
    with pytest.raises(TwilioRestException) as missing:
        client.calls("CA" + "c" * 32).fetch()
    assert missing.value.status == 404


def test_messages_are_kept_not_sent(sandbox):
    app, base, client, store = sandbox
    message = client.messages.create(to="+12125550143", from_="+12125550100", body="Reply STOP to stop")
    assert message.sid.startswith("SM")
    assert [(m["to"], m["body"]) for m in store.messages()] == [("+12125550143", "Reply STOP to stop")]
    with pytest.raises(TwilioRestException) as bad:
        client.messages.create(to="555", from_="+12125550100", body="x")
    assert (bad.value.status, bad.value.code) == (400, 21211)


def test_recordings_are_served_only_with_the_account_credentials(sandbox):
    app, base, client, store = sandbox
    url = store.save_recording("CA" + "d" * 32, "RE" + "1" * 32, b"RIFF-audio")
    assert url == f"{base}/sandbox/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{'1' * 32}"
    assert requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).content == b"RIFF-audio"
    assert requests.get(url + ".wav", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).content == b"RIFF-audio"
    assert requests.get(url, timeout=5).status_code == 401
    assert client.recordings("RE" + "1" * 32).fetch().call_sid == "CA" + "d" * 32


def test_phone_scripts_are_validated(sandbox):
    app, base, client, store = sandbox
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    ok = requests.put(f"{base}/sandbox/phones/+12125550143", json={"replies": [1, "silence"]},
                      auth=auth, timeout=5)
    assert ok.status_code == 200 and store.phone("+12125550143").replies[0].value == "1"
    bad = requests.put(f"{base}/sandbox/phones/+12125550143", json={"answer": "maybe"}, auth=auth, timeout=5)
    assert bad.status_code == 400 and "answer must be one of" in bad.json()["message"]
    assert requests.put(f"{base}/sandbox/phones/+12125550143", json={}, timeout=5).status_code == 401
    listed = requests.put(f"{base}/sandbox/phones/+12125550143", json=[1], auth=auth, timeout=5)
    assert listed.status_code == 400 and "a script is a mapping" in listed.json()["message"]
    for path in ("/etc/hostname", "/no/such/file"):  # never read, and existence is not revealed
        named = requests.put(f"{base}/sandbox/phones/+12125550143", json={"replies": [{"audio": path}]},
                             auth=auth, timeout=5)
        assert named.status_code == 400
        assert named.json()["message"] == ("reply 1: audio replies can only be set from the command "
                                           "line (ivr sandbox phone --script FILE)")


def test_recordings_are_listed_and_deleted_like_twilios(sandbox):
    app, base, client, store = sandbox
    first = store.save_recording("CA" + "c" * 32, "RE" + "1" * 32, b"RIFF....")
    store.save_recording("CA" + "c" * 32, "RE" + "2" * 32, b"RIFF....")
    assert first.endswith("/Recordings/RE" + "1" * 32)
    assert sorted(r.sid for r in client.recordings.list()) == ["RE" + "1" * 32, "RE" + "2" * 32]
    assert client.recordings("RE" + "1" * 32).delete() is True
    assert [r.sid for r in client.recordings.list()] == ["RE" + "2" * 32]
    assert requests.get(first, auth=(ACCOUNT_SID, AUTH_TOKEN)).status_code == 404  # the audio is gone too
    with pytest.raises(TwilioRestException) as missing:
        client.recordings("RE" + "1" * 32).delete()
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_queues_are_deleted_like_twilios_once_empty(sandbox):
    """Our Dialer deletes a queue through the real client: 404 for none, refused while a caller
    waits in it, gone after."""
    from ivr.errors import CarrierError
    from ivr.sandbox.interpreter import queue_sid
    from ivr.telephony import TwilioDialer

    app, base, client, store = sandbox
    dialer = TwilioDialer(client)
    store.join_queue("ivr-front", "CA" + "d" * 32)
    sid = queue_sid("ivr-front")
    assert store.queue_sids() == [sid]
    with pytest.raises(CarrierError, match="HTTP 400"):
        dialer.delete_queue(sid)                          # a caller still waits in it
    store.leave_queue("ivr-front", "CA" + "d" * 32)
    assert dialer.delete_queue(sid) is True and store.queue_sids() == []
    assert dialer.delete_queue(sid) is False              # none by that SID any more


def test_a_call_whose_url_fails_hears_the_fallback_and_is_put_through(sandbox):
    """The sandbox asks a call's FallbackUrl, as Twilio does, when its URL answers an error: the
    caller hears the apology and is put through to the clinic's staff instead of silence."""
    from tests.support import seed_demo_touch

    app, base, client, store = sandbox
    demo = seed_demo_touch(app.extensions["ivr"].sessions)
    placed = client.calls.create(to=demo.patient_phone, from_="+12125550100",
                                 url=f"{base}/twilio/voice/outbound/999999999",  # no such touch: 404
                                 fallback_url=f"{base}/twilio/voice/fallback")
    transcript = wait_for_transcript(store, placed.sid, timeout=10)
    first = transcript["turns"][0]
    assert first["error"] == "webhook answered HTTP 404; the fallback URL was asked"
    assert transcript["fallback"] == "webhook answered HTTP 404"
    assert first["prompts"][0]["say"].startswith("Sorry")
    assert first["dial"]["to"] == demo.staff_phone and transcript["error"] is None
    without = client.calls.create(to=demo.patient_phone, from_="+12125550100",
                                  url=f"{base}/twilio/voice/outbound/999999999")
    assert wait_for_transcript(store, without.sid, timeout=10)["error"] == "webhook answered HTTP 404"
