"""Twilio's fallback URL: when a call's URL fails, the caller still hears an apology and is put
through to the clinic's staff, with or without the database."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from ivr import create_app
from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL, TwilioClient, call_sid, parse_twiml

FALLBACK = "/twilio/voice/fallback"


def ask(twilio, **form):
    return twilio.post(FALLBACK, {"CallSid": call_sid(), "CallStatus": "in-progress", "ErrorCode": "11200",
                                  "ErrorUrl": f"{PUBLIC_BASE_URL}/twilio/voice/step?turn=2", **form})


def test_the_caller_is_put_through_to_the_clinics_staff(twilio, demo):
    answer = ask(twilio, From="+12125550100", To="+12125550143", Direction="outbound-api", Digits="1")
    assert answer.status_code == 200
    verbs = parse_twiml(answer.data)
    assert [v.name for v in verbs] == ["Say", "Dial"]
    assert "sorry" in verbs[0].text.lower()
    assert verbs[1].children[0].name == "Number" and verbs[1].children[0].text == demo.staff_phone


def test_without_the_database_the_configured_number_takes_the_call(database_url, redis, tmp_path, demo,
                                                                 monkeypatch):
    app = create_app({"ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                      "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS": redis, "INSTANCE_PATH": str(tmp_path / "i"),
                      "FALLBACK_STAFF_NUMBER": "+12125550111"})
    try:
        def down(*_args, **_kwargs):
            raise OperationalError("SELECT", {}, Exception("the database is down"))

        monkeypatch.setattr(type(app.extensions["ivr"].sessions), "__call__", down)
        verbs = parse_twiml(ask(TwilioClient(app.test_client()), From="+12125550100", To="+12125550143").data)
        assert [v.name for v in verbs] == ["Say", "Dial"]
        assert verbs[1].children[0].text == "+12125550111"
    finally:
        app.extensions["ivr"].engine.dispose()


def test_with_no_number_to_put_them_through_the_caller_is_asked_to_call_again(twilio, demo):
    verbs = parse_twiml(ask(twilio, From="+12125550143", To="+12125550999").data)
    assert [v.name for v in verbs] == ["Say", "Hangup"]
    assert "call" in verbs[0].text.lower() and "again" in verbs[0].text.lower()


def test_a_name_twilio_added_without_notice_still_gets_the_caller_through(twilio, demo):
    """The fallback is the caller's last answer: an unknown name is logged, not refused."""
    verbs = parse_twiml(ask(twilio, From="+12125550100", To="+12125550143", NewParam="1").data)
    assert [v.name for v in verbs] == ["Say", "Dial"]


def test_an_inbound_call_finds_its_clinic_by_the_number_it_rang(twilio, demo):
    verbs = parse_twiml(ask(twilio, From="+12125550143", To="+12125550100", Direction="inbound").data)
    assert verbs[1].children[0].text == demo.staff_phone
