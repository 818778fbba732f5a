"""Hostile input, property-based: random and malformed parameters, correctly signed, to every
/twilio/ route. Whatever arrives, the answer is never a server error: it is well-formed TwiML, an
empty success, or a 4xx that says what was wrong. (A signature that does not match is refused
before any of this: tests/ivr/test_hostile.py.)"""

import string
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings, strategies as st

from ivr import twilio_params
from tests.support import ACCOUNT_SID, call_sid

# Values a field may carry: what Twilio sends, near misses, and anything at all (controls,
# surrogate-free Unicode, very long, empty).
DIGITS = st.text(alphabet="0123456789*#", max_size=12)
STATUSES = st.sampled_from(["queued", "initiated", "ringing", "in-progress", "answered", "completed", "busy",
                            "no-answer", "failed", "canceled", "sent", "delivered", "undelivered", "received"])
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
SIDS = st.one_of(st.just(call_sid(1)), st.just(call_sid(2)),
                 st.text(alphabet=string.hexdigits, min_size=32, max_size=32).map(lambda h: "CA" + h.lower()),
                 st.text(alphabet=string.ascii_letters + string.digits, max_size=40))
PHONES = st.one_of(st.just("+12125550143"), st.just("+12125550100"), st.from_regex(r"\+[0-9]{1,16}", fullmatch=True),
                   ANY_TEXT)
FIELDS = {"CallSid": SIDS, "ParentCallSid": SIDS, "DialCallSid": SIDS, "MessageSid": SIDS, "RecordingSid": SIDS,
          "Digits": st.one_of(DIGITS, ANY_TEXT), "CallStatus": st.one_of(STATUSES, ANY_TEXT),
          "DialCallStatus": st.one_of(STATUSES, ANY_TEXT), "MessageStatus": st.one_of(STATUSES, ANY_TEXT),
          "AnsweredBy": st.one_of(st.sampled_from(["human", "machine_start", "machine_end_beep", "fax", "unknown"]),
                                  ANY_TEXT),
          "From": PHONES, "To": PHONES, "Body": ANY_TEXT, "QueueResult": ANY_TEXT, "ErrorCode": ANY_TEXT,
          "RecordingUrl": ANY_TEXT, "SpeechResult": ANY_TEXT, "Confidence": ANY_TEXT, "QueuePosition": ANY_TEXT}


def routes(app) -> list[tuple[str, str]]:
    """(endpoint, a URL of it) for every POST route under /twilio/, its numbers filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/twilio/") or "POST" not in rule.methods:
            continue
        found.append((rule.endpoint, rule.rule))
    return sorted(found)


# What a real request to each kind of route carries, before anything is made hostile: an existing
# call (or text) and real numbers, so that most requests get past the format checks and into
# the flows, where the interesting failures are.
VOICE_BASE = {"CallSid": call_sid(1), "From": "+12125550100", "To": "+12125550143", "CallStatus": "in-progress"}
SMS_BASE = {"MessageSid": "SM" + "1" * 32, "From": "+12125550143", "To": "+12125550100", "Body": "C"}


@st.composite
def requests(draw, app):
    """(endpoint, path, form) of a signed request: a route, its numbers, and a real-looking form
    with some of its documented names given hostile or random values."""
    endpoint, rule = draw(st.sampled_from(routes(app)))
    path = rule
    for part in [p for p in rule.split("/") if p.startswith("<")]:
        path = path.replace(part, str(draw(st.one_of(st.integers(1, 3), st.integers(1, 2**31)))), 1)
    if draw(st.booleans()):
        path += f"?turn={draw(st.integers(-1, 5))}"
    names = sorted(twilio_params.ROUTES.get(endpoint, twilio_params.COMMON) - {"AccountSid"})
    base = SMS_BASE if endpoint.startswith("twilio_sms.") else VOICE_BASE
    form = {"AccountSid": ACCOUNT_SID, **{k: v for k, v in base.items() if k in names}}
    if draw(st.booleans()):
        form["CallSid" if "CallSid" in names else "MessageSid"] = call_sid(2)   # the inbound call
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=6)):
        form[name] = draw(FIELDS.get(name, ANY_TEXT))
    for name in draw(st.lists(st.sampled_from(sorted(set(base) & set(names))), unique=True, max_size=2)):
        del form[name]   # and sometimes without something it always carries
    return endpoint, path, form


def test_no_signed_request_to_any_twilio_route_gets_a_server_error(app, twilio, demo):
    # One of each route's typical calls first, so the fuzzing also finds calls and texts that exist.
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid(1)})
    twilio.post("/twilio/voice/inbound", {"CallSid": call_sid(2), "From": "+12125550143", "To": "+12125550100"})

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(requests(app))
    def check(request):
        endpoint, path, form = request
        response = twilio.post(path, form)
        assert response.status_code < 500, (endpoint, path, form, response.status_code)
        if response.status_code == 200 and response.mimetype in ("text/xml", "application/xml"):
            root = ET.fromstring(response.data)
            assert root.tag == "Response", (endpoint, path, form)

    check()
