"""Calls to a clinic's number: welcome, transfer to staff with a whisper, the transfer's result."""

from sqlalchemy import select

from ivr.models import Call, CallEvent
from speech.common import Voice
from tests.support import PUBLIC_BASE_URL, call_sid, parse_twiml, spoken
from tests.twiml_schema import assert_valid

CLINIC_NUMBER = "+12125550100"


def ring(twilio, to=CLINIC_NUMBER, sid=None):
    return twilio.post("/twilio/voice/inbound", {"CallSid": sid or call_sid(7), "From": "+12125550111",
                                                "To": to, "Direction": "inbound"})


def heard(response):
    assert response.status_code == 200, response.data
    assert_valid(response.data)
    return parse_twiml(response.data)


def test_a_call_to_the_clinic_is_welcomed_and_transferred_with_a_whisper(twilio, demo, sessions):
    verbs = heard(ring(twilio))
    assert [v.name for v in verbs] == ["Say", "Say", "Dial"]
    assert spoken(verbs) == ["Thank you for calling Riverside Family Clinic.",
                             "Please hold while I connect you to our staff."]
    assert verbs[2].attrs == {"action": "/twilio/voice/dial?turn=1", "method": "POST"}
    assert [(n.name, n.attrs, n.text) for n in verbs[2].children] == [
        ("Number", {"url": "/twilio/voice/whisper?prompt=inbound.whisper", "method": "POST"},
         demo.staff_phone)]
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.direction, call.flow, call.clinic_id, call.touch_id) == ("inbound", "inbound", 1, None)


def test_staff_hear_a_whisper_that_names_no_patient(twilio, demo):
    heard(ring(twilio))
    response = twilio.post("/twilio/voice/whisper?prompt=inbound.whisper",
                           {"CallSid": call_sid(8), "ParentCallSid": call_sid(7),
                            "Direction": "outbound-dial"})
    assert spoken(heard(response)) == ["A caller from the patient line. They have not been identified yet."]


def test_whisper_refuses_other_prompts(twilio, demo):
    heard(ring(twilio))
    response = twilio.post("/twilio/voice/whisper?prompt=reminder.details",
                           {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)})
    assert response.status_code == 400


def test_answered_transfer_ends_the_call_as_transferred(twilio, demo, sessions):
    heard(ring(twilio))
    verbs = heard(twilio.post("/twilio/voice/dial?turn=1", {"CallSid": call_sid(7), "DialCallStatus": "completed",
                                                     "DialCallDuration": "42"}))
    assert [v.name for v in verbs] == ["Hangup"]
    with sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "transferred"
        details = [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.kind == "step"))]
    assert details[-1]["input"] == {"dial_status": "completed"}


def test_unanswered_transfer_is_said_plainly_and_recorded(twilio, demo, sessions):
    heard(ring(twilio))
    verbs = heard(twilio.post("/twilio/voice/dial?turn=1", {"CallSid": call_sid(7), "DialCallStatus": "no-answer"}))
    assert spoken(verbs) == ["Sorry, no one can take your call right now. Please try again later. Goodbye."]
    with sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "transfer_unanswered"


def test_a_number_no_clinic_uses_is_not_in_service(twilio, demo, sessions):
    verbs = heard(ring(twilio, to="+12125550999"))
    assert spoken(verbs) == ["Sorry, this number is not in service. Goodbye."]
    assert [v.name for v in verbs] == ["Say", "Hangup"]
    with sessions() as session:
        assert session.scalars(select(Call)).all() == []


def test_bad_dial_status_is_400_and_unsigned_inbound_is_403(twilio, client, demo):
    assert twilio.post("/twilio/voice/dial", {"CallSid": call_sid(7), "DialCallStatus": "maybe"}).status_code == 400
    assert client.post("/twilio/voice/inbound", data={"CallSid": call_sid(7)}).status_code == 403


def test_inbound_status_callbacks_use_the_generic_route(twilio, demo, sessions):
    heard(ring(twilio))
    twilio.post("/twilio/status", {"CallSid": call_sid(7), "CallStatus": "completed"})
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.status, call.outcome) == ("completed", "hung_up")


def test_once_rendered_the_welcome_and_the_whisper_play_in_the_clinics_voice(twilio, demo, runner, app):
    """`ivr prompts render` covers the inbound line: nothing on it names a patient."""
    assert runner.invoke(args=["prompts", "render", "--language", "en"]).exit_code == 0
    cache = app.extensions["ivr"].prompt_audio

    def played(verb, text):
        key = cache.key(Voice("en", "gmw/en-us", 150), text)
        return (verb.name, verb.text) == ("Play", f"{PUBLIC_BASE_URL}/audio/{key}.wav")

    verbs = heard(ring(twilio))
    assert [v.name for v in verbs] == ["Play", "Play", "Dial"]
    assert played(verbs[0], "Thank you for calling Riverside Family Clinic.")
    assert played(verbs[1], "Please hold while I connect you to our staff.")
    whisper = heard(twilio.post("/twilio/voice/whisper?prompt=inbound.whisper",
                                {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)}))
    assert len(whisper) == 1 and played(whisper[0], "A caller from the patient line. They have not been "
                                                    "identified yet.")
