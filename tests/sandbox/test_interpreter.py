"""The sandbox's TwiML interpreter against a customer app over real HTTP: verbs, signatures,
fall-through on no input, recordings, transfers, queues, errors."""

import io
import wave

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from ivr.sandbox import script as scripts
from ivr.sandbox.calling import serve
from ivr.sandbox.interpreter import CallPlayer, PlacedCall

TOKEN = "interpreter-token"


class MemoryRecordings:
    """Recording store that keeps audio in a dict and serves no URL of its own."""

    def __init__(self):
        self.audio = {}

    def save_recording(self, call_sid, recording_sid, audio):
        self.audio[recording_sid] = audio
        return f"https://recordings.example/{recording_sid}"


class Control:
    def __init__(self):
        self.updates = {}

    def pending_update(self, sid):
        return self.updates.pop(sid, None)


@pytest.fixture
def customer():
    """A TwiML app: DOCS maps path -> TwiML body; every request is logged with its signature check."""
    docs, seen = {}, []

    def make(base):
        app = Flask("customer")
        validator = RequestValidator(TOKEN)

        @app.route("/<path:path>", methods=["GET", "POST"])
        def answer(path):
            params = request.form.to_dict() if request.method == "POST" else {}
            valid = validator.validate(request.url, params, request.headers.get("X-Twilio-Signature", ""))
            seen.append({"path": "/" + path, "method": request.method, "valid": valid,
                         **(request.form.to_dict() if request.method == "POST" else request.args.to_dict())})
            body = docs.get("/" + path)
            if body is None:
                return Response(status=404)
            if isinstance(body, int):
                return Response(status=body)
            if isinstance(body, tuple):  # (bytes, content type): media for <Play>
                return Response(body[0], mimetype=body[1])
            return Response(body, mimetype="text/xml")

        return app

    with serve(make) as (_app, base):
        yield base, docs, seen


def play(base, script=None, direction="outbound-api", control=None, recordings=None, queues=None, **call):
    player = CallPlayer(TOKEN, recordings or MemoryRecordings(), control=control, queues=queues)
    placed = PlacedCall(sid="CA" + "a" * 32, account_sid="AC" + "0" * 32, from_="+12125550100",
                        to="+12125550143", direction=direction, url=f"{base}/start", **call)
    return player.play(placed, script or scripts.Script())


def twiml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


def test_every_request_is_signed_and_gather_posts_the_keys(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Gather numDigits="1" action="/next"><Say>Press one.</Say></Gather>')
    docs["/next"] = twiml("<Say>Thanks.</Say><Hangup/>")
    transcript = play(base, scripts.from_keys("12"))
    assert [(s["path"], s.get("Digits")) for s in seen] == [("/start", None), ("/next", "1")]
    assert all(s["valid"] for s in seen)
    assert seen[0]["CallSid"] == "CA" + "a" * 32 and seen[0]["Direction"] == "outbound-api"
    assert [t["prompts"] for t in transcript.as_dict()["turns"]] == [
        [{"say": "Press one.", "language": "en-US"}], [{"say": "Thanks.", "language": "en-US"}]]
    assert transcript.status == "completed"


def test_play_fetches_its_media_and_notes_what_could_not_play(customer):
    """Twilio fetches each <Play> file with a GET; one it cannot fetch or decode is skipped."""
    base, docs, seen = customer
    from speech.audio import Audio
    import numpy as np

    docs["/hello.wav"] = (Audio(np.zeros(12000, dtype=np.float32), 8000).mulaw_wav(), "audio/wav")
    docs["/page.wav"] = ("<html></html>", "text/html")
    docs["/start"] = twiml("<Play>/hello.wav</Play><Play>/missing.wav</Play><Play>/page.wav</Play><Hangup/>")
    transcript = play(base)
    assert transcript.as_dict()["turns"][0]["prompts"] == [
        {"play": f"{base}/hello.wav", "seconds": 1.5},
        {"play": f"{base}/missing.wav", "error": "media answered HTTP 404"},
        {"play": f"{base}/page.wav", "error": "media is text/html, not audio (Twilio error 13420)"}]
    assert [(s["path"], s["method"]) for s in seen[1:]] == [
        ("/hello.wav", "GET"), ("/missing.wav", "GET"), ("/page.wav", "GET")]
    assert transcript.status == "completed"


def test_no_input_falls_through_to_the_next_verb(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Gather action="/next"><Say>Press.</Say></Gather><Redirect>/again</Redirect>')
    docs["/again"] = twiml("<Hangup/>")
    play(base, scripts.from_keys("silence"))
    assert [s["path"] for s in seen] == ["/start", "/again"]


def test_finish_key_ends_the_digits_and_the_default_action_is_the_same_document(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Gather finishOnKey="#"><Say>Date of birth?</Say></Gather>')
    play(base, scripts.parse({"replies": ["0412#9"], "max_turns": 2}))
    assert [(s["path"], s.get("Digits")) for s in seen] == [("/start", None), ("/start", "0412")]


def test_action_on_empty_result_posts_even_without_input(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Gather action="/empty" actionOnEmptyResult="true"/><Say>Skipped.</Say>')
    docs["/empty"] = twiml("<Hangup/>")
    transcript = play(base, scripts.from_keys("silence"))
    assert [(s["path"], s.get("Digits")) for s in seen] == [("/start", None), ("/empty", None)]
    assert transcript.as_dict()["turns"][0].get("prompts") is None


def test_speech_reply_reaches_a_speech_gather(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Gather input="speech dtmf" action="/heard"/>')
    docs["/heard"] = twiml("<Hangup/>")
    play(base, scripts.parse({"replies": [{"say": "yes please"}]}))
    assert (seen[1]["SpeechResult"], seen[1]["Confidence"]) == ("yes please", "0.9")


def _wav(seconds=1.5, rate=8000):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))
    return buffer.getvalue()


def test_record_uploads_the_audio_and_posts_its_url(customer, tmp_path):
    base, docs, seen = customer
    (tmp_path / "yes.wav").write_bytes(_wav())
    docs["/start"] = twiml('<Say>Say yes.</Say><Record action="/got" finishOnKey="0123456789*#"/>'
                           '<Redirect>/nothing</Redirect>')
    docs["/got"] = twiml("<Hangup/>")
    recordings = MemoryRecordings()
    play(base, scripts.parse({"replies": [{"audio": str(tmp_path / "yes.wav")}]}), recordings=recordings)
    got = seen[1]
    assert got["path"] == "/got" and got["RecordingDuration"] == "2"
    assert got["RecordingUrl"] == f"https://recordings.example/{got['RecordingSid']}"
    assert recordings.audio[got["RecordingSid"]] == _wav()
    assert "Digits" not in got


def test_record_ended_by_a_key_passes_it_as_digits_and_silence_skips_the_action(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Record action="/got"/><Redirect>/nothing</Redirect>')
    docs["/got"] = twiml('<Record action="/got2"/><Redirect>/nothing</Redirect>')
    docs["/nothing"] = twiml("<Hangup/>")
    play(base, scripts.from_keys("3,silence"))
    assert [(s["path"], s.get("Digits")) for s in seen] == [("/start", None), ("/got", "3"), ("/nothing", None)]


def test_dial_with_whisper_when_staff_answers(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Say>Connecting.</Say><Dial action="/after">'
                           '<Number url="/whisper">+12125550199</Number></Dial>')
    docs["/whisper"] = twiml("<Say>Patient line call.</Say>")
    docs["/after"] = twiml("<Hangup/>")
    transcript = play(base).as_dict()
    assert transcript["turns"][0]["dial"] == {
        "to": "+12125550199", "whisper": [{"say": "Patient line call.", "language": "en-US"}],
        "status": "completed"}
    whisper, after = seen[1], seen[2]
    assert (whisper["path"], whisper["Direction"], whisper["ParentCallSid"]) == (
        "/whisper", "outbound-dial", "CA" + "a" * 32)
    assert (after["path"], after["DialCallStatus"], after["DialCallDuration"]) == ("/after", "completed", "30")


@pytest.mark.parametrize("staff", ["no-answer", "busy"])
def test_dial_that_nobody_answers_continues_with_the_next_verb(customer, staff):
    base, docs, seen = customer
    docs["/start"] = twiml("<Dial>+12125550199</Dial><Redirect>/sorry</Redirect>")
    docs["/sorry"] = twiml("<Say>Nobody is free.</Say>")
    transcript = play(base, scripts.parse({"staff": staff})).as_dict()
    assert transcript["turns"][0]["dial"] == {"to": "+12125550199", "status": staff}
    assert [s["path"] for s in seen] == ["/start", "/sorry"]


def test_a_queued_caller_hears_the_wait_url_until_a_staff_call_takes_them(customer):
    """The wait document is asked again and again, with the caller's place and time waited, until
    another call takes the caller out of the queue (<Dial><Queue>); then the action URL hears it."""
    import threading
    import time

    from ivr.sandbox.interpreter import LocalQueues

    base, docs, seen = customer
    docs["/start"] = twiml('<Enqueue waitUrl="/hold" action="/left">front-desk</Enqueue>')
    docs["/hold"] = twiml('<Say>Please hold.</Say><Pause length="10"/>')
    docs["/left"] = twiml("<Say>Goodbye.</Say>")
    queues = LocalQueues()

    def staff():
        while len([s for s in seen if s["path"] == "/hold"]) < 3:
            time.sleep(0.01)
        assert queues.take_from_queue("front-desk", "CA" + "b" * 32) == "CA" + "a" * 32

    taking = threading.Thread(target=staff)
    taking.start()
    transcript = play(base, queues=queues).as_dict()
    taking.join()
    queue = transcript["turns"][0]["queue"]
    assert queue["result"] == "bridged" and queue["passes"] >= 3
    assert queue["waits"][0] == {"position": 1, "prompts": [{"say": "Please hold.", "language": "en-US"},
                                                             {"pause": 10}]}
    holds = [s for s in seen if s["path"] == "/hold"]
    assert [h["QueueTime"] for h in holds[:3]] == ["0", "13", "26"]      # virtual: a Say is 3 s
    assert (holds[0]["QueuePosition"], holds[0]["CurrentQueueSize"]) == ("1", "1")
    left = [s for s in seen if s["path"] == "/left"]
    assert [(x["QueueResult"], x["QueueSid"].startswith("QU")) for x in left] == [("bridged", True)]


def test_leave_in_the_wait_document_goes_to_the_action_and_a_key_is_posted_to_its_gather(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Enqueue waitUrl="/hold" action="/left">front-desk</Enqueue>')
    docs["/hold"] = twiml('<Gather numDigits="1" action="/key"><Say>Press 1 to leave.</Say></Gather>')
    docs["/key"] = twiml("<Leave/>")
    docs["/left"] = twiml("<Say>You left.</Say>")
    transcript = play(base, scripts.parse({"queue": "call_back"})).as_dict()
    queue = transcript["turns"][0]["queue"]
    assert (queue["result"], queue["waits"][0]["reply"]) == ("leave", {"kind": "keys", "value": "1"})
    key = [s for s in seen if s["path"] == "/key"][0]
    assert (key["Digits"], key["QueuePosition"]) == ("1", "1")
    assert [(s["path"], s.get("QueueResult")) for s in seen][-1] == ("/left", "leave")
    assert transcript["turns"][1]["prompts"] == [{"say": "You left.", "language": "en-US"}]


def test_a_caller_who_hangs_up_in_the_queue_is_reported_as_hangup(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Enqueue waitUrl="/hold" action="/left">front-desk</Enqueue>')
    docs["/hold"] = twiml('<Gather numDigits="1" action="/key"><Say>Press 1.</Say></Gather>')
    transcript = play(base, scripts.parse({"queue": "hangup"})).as_dict()
    assert transcript["turns"][0]["queue"]["result"] == "hangup"
    assert [(s["path"], s.get("QueueResult")) for s in seen][-1] == ("/left", "hangup")
    assert transcript["status"] == "completed"


def test_a_staff_call_dialling_a_queue_takes_its_first_caller(customer):
    from ivr.sandbox.interpreter import LocalQueues

    base, docs, seen = customer
    queues = LocalQueues()
    queues.join_queue("front-desk", "CA" + "c" * 32)
    docs["/start"] = twiml("<Dial><Queue>front-desk</Queue></Dial>")
    transcript = play(base, queues=queues).as_dict()
    assert transcript["turns"][0]["dial"] == {"to": "queue front-desk", "status": "completed",
                                              "caller": "CA" + "c" * 32}
    assert queues.bridged_to("CA" + "c" * 32) == "CA" + "a" * 32 and queues.queue_place("front-desk", "x") is None


def test_redirect_with_get_signs_the_query_string(customer):
    base, docs, seen = customer
    docs["/start"] = twiml('<Redirect method="GET">/menu?lang=en</Redirect>')
    docs["/menu"] = twiml("<Hangup/>")
    play(base)
    assert (seen[1]["method"], seen[1]["valid"], seen[1]["lang"], seen[1]["CallSid"]) == (
        "GET", True, "en", "CA" + "a" * 32)


@pytest.mark.parametrize("reason,status", [("busy", "busy"), ("rejected", "no-answer")])
def test_reject_as_first_verb_of_an_inbound_call_is_never_answered(customer, reason, status):
    base, docs, seen = customer
    docs["/start"] = twiml(f'<Reject reason="{reason}"/>')
    docs["/status"] = twiml("")
    transcript = play(base, direction="inbound", status_callback=f"{base}/status",
                      status_callback_events=("initiated", "ringing", "answered", "completed"))
    assert transcript.status == status
    assert [c["status"] for c in transcript.callbacks] == ["initiated", "ringing", status]


@pytest.mark.parametrize("body,error", [
    (500, "webhook answered HTTP 500"),
    ("this is not xml", "webhook answered something that is not XML"),
    ("<Reply/>", "webhook answered <Reply>, not <Response>"),
    (twiml("<Speak>Hi</Speak>"), "unknown verb <Speak>"),
])
def test_an_unusable_answer_ends_the_call_like_an_application_error(customer, body, error):
    base, docs, _ = customer
    docs["/start"] = body
    transcript = play(base)
    assert (transcript.status, transcript.error) == ("completed", error)


def test_a_redirect_loop_is_stopped(customer):
    base, docs, seen = customer
    docs["/start"] = twiml("<Redirect>/start</Redirect>")
    transcript = play(base, scripts.parse({"max_turns": 5}))
    assert len(seen) == 5 and transcript.error == "stopped after 5 turns"


def test_a_rest_hang_up_ends_the_call_at_the_next_turn(customer):
    base, docs, seen = customer
    control = Control()
    control.updates["CA" + "a" * 32] = {"Status": "completed"}
    docs["/start"] = twiml("<Say>Hi.</Say>")
    transcript = play(base, control=control)
    assert seen == [] and transcript.status == "completed"


def test_a_rest_redirect_moves_the_call(customer):
    base, docs, seen = customer
    control = Control()
    control.updates["CA" + "a" * 32] = {"Url": f"{base}/elsewhere"}
    docs["/elsewhere"] = twiml("<Say>Moved.</Say>")
    play(base, control=control)
    assert [s["path"] for s in seen] == ["/elsewhere"]
