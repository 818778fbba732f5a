"""Defects found by trying the server with hostile input: each test failed before its fix."""

import pytest
from sqlalchemy import select, text, update

from ivr.models import Appointment, CallEvent, Clinic, Patient
from tests.support import call_sid, parse_twiml, spoken
from tests.twiml_schema import assert_valid

XML_HOSTILE = "Ja\x00ne\x0b \ufffe\uffff\x1b"
# PostgreSQL refuses NUL in any text, so what plain SQL can store there has every other kind.
SQL_HOSTILE = "Ja\x01ne\x0b \ufffe\uffff\x1b"


def test_a_name_holding_characters_xml_cannot_carry_still_gives_well_formed_twiml(twilio, demo, sessions):
    """Stored before names were cleaned (or by plain SQL): cleaned again where prompts render."""
    with sessions.begin() as session:
        session.execute(update(Patient).values(first_name=SQL_HOSTILE))
        session.execute(update(Clinic).values(name="River\x02side\x1f Clinic"))
    response = twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    assert response.status_code == 200
    assert_valid(response.data)
    said = spoken(parse_twiml(response.data))
    assert said[0] == "Hello. This is River side  Clinic calling."
    assert said[1].startswith("If you are Ja ne ")


def test_names_are_cleaned_where_they_enter(sessions, demo):
    with sessions.begin() as session:
        patient = session.scalars(select(Patient).where(Patient.first_name == "Jane")).one()
        patient.first_name = XML_HOSTILE
        patient.last_name = "  Doe\t\n "
        session.scalars(select(Clinic)).one().name = "River\x00side"
        session.get(Appointment, demo.appointment_id).provider_name = "Doctor\x07 Patel"
    with sessions() as session:
        patient = session.get(Appointment, demo.appointment_id).patient
        assert (patient.first_name, patient.last_name) == ("Ja ne", "Doe")
        assert session.scalars(select(Clinic.name)).one() == "River side"
        assert session.get(Appointment, demo.appointment_id).provider_name == "Doctor Patel"


def test_the_whisper_route_refuses_a_prompt_it_does_not_have(twilio, demo):
    response = twilio.post("/twilio/voice/whisper?prompt=inbound.whisper_nope",
                           {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)})
    assert response.status_code == 400


@pytest.mark.parametrize("route", ["/twilio/status/outbound/{}", "/twilio/voice/outbound/{}"])
@pytest.mark.parametrize("touch_id", [2**31, 2**63, 2**64 + 5, 10**30])
def test_a_touch_id_no_row_can_have_is_404(twilio, demo, route, touch_id):
    response = twilio.post(route.format(touch_id), {"CallSid": call_sid(), "CallStatus": "completed"})
    assert response.status_code == 404


def test_the_largest_row_id_is_still_looked_up(twilio, demo):
    response = twilio.post(f"/twilio/status/outbound/{2**31 - 1}", {"CallSid": call_sid(), "CallStatus": "completed"})
    assert response.status_code == 204  # no such touch: the callback is ignored, not an error


@pytest.mark.parametrize("statement", ["UPDATE call_event SET kind = 'forged'", "DELETE FROM call_event"])
def test_the_database_itself_refuses_to_rewrite_the_audit_trail(twilio, demo, sessions, statement):
    from sqlalchemy.exc import DatabaseError

    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    with pytest.raises(DatabaseError, match="append-only"):
        with sessions.begin() as session:
            session.execute(text(statement))
    with sessions() as session:
        assert [e.kind for e in session.scalars(select(CallEvent))] == ["step"]


def test_a_signature_kept_by_moving_letters_across_a_name_is_refused(twilio, demo, sessions):
    """`AnsweredBy=machine_end_beep` and `AnsweredB=ymachine_end_beep` sign the same: the second
    would turn an answering machine into a person who then hears the patient's first name."""
    from ivr.models import Call
    from twilio.request_validator import RequestValidator

    from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL

    path = f"/twilio/voice/outbound/{demo.touch_id}"
    real = {"CallSid": call_sid(), "AnsweredBy": "machine_end_beep"}
    shifted = {"CallSid": call_sid(), "AnsweredB": "ymachine_end_beep"}
    validator = RequestValidator(AUTH_TOKEN)
    signature = validator.compute_signature(PUBLIC_BASE_URL + path, {"AccountSid": "AC" + "0" * 32, **real})
    assert validator.compute_signature(PUBLIC_BASE_URL + path, {"AccountSid": "AC" + "0" * 32, **shifted}) == signature
    assert twilio.post(path, shifted, signature=signature).status_code == 400
    with sessions() as session:
        assert session.scalars(select(Call)).all() == []
    assert b"Jane" not in twilio.post(path, real, signature=signature).data


def test_a_name_sent_twice_is_refused(twilio, demo, client):
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL

    data = MultiDict([("AccountSid", "AC" + "0" * 32), ("CallSid", call_sid()), ("CallStatus", "ringing"),
                      ("CallStatus", "completed")])
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + "/twilio/status", data)
    assert client.post("/twilio/status", data=data, headers={"X-Twilio-Signature": signature}).status_code == 400


@pytest.mark.parametrize("route,data", [
    ("/twilio/status", {"CallStatus": "ringing", "Digits": "1"}),         # a key on a status callback
    ("/twilio/voice/step?turn=1", {"Digits": "1", "DialCallStatus": "completed"}),
    ("/twilio/voice/step?turn=1", {"Digits": "1", "Foo": "bar"}),
])
def test_a_name_twilio_never_sends_to_that_route_is_refused(twilio, demo, route, data):
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    assert twilio.post(route, {"CallSid": call_sid(), **data}).status_code == 400


def test_everything_twilio_documents_is_taken_and_sip_headers_pass(twilio, demo):
    documented = {"CallSid": call_sid(), "CallStatus": "in-progress", "ApiVersion": "2010-04-01",
                  "Direction": "outbound-api", "From": "+12125550100", "To": demo.patient_phone,
                  "Caller": "+12125550100", "Called": demo.patient_phone, "CalledCity": "NEW YORK",
                  "StirVerstat": "TN-Validation-Passed-A", "SipHeader_X-Clinic": "7",
                  "AnsweredBy": "human", "MachineDetectionDuration": "2100"}
    response = twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", documented)
    assert response.status_code == 200 and b"Jane" in response.data


def test_an_operator_can_let_unknown_names_through_while_twilio_adds_one(database_url, redis, tmp_path):
    """Twilio may add parameters without notice: IVR_TWILIO_UNKNOWN_PARAMS=log keeps calls
    working (the name is logged) until the list learns it."""
    from ivr import create_app
    from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL, TwilioClient, seed_demo_touch

    app = create_app({"ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                      "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": str(tmp_path), "REDIS": redis,
                      "TWILIO_UNKNOWN_PARAMS": "log"})
    demo = seed_demo_touch(app.extensions["ivr"].sessions)
    response = TwilioClient(app.test_client()).post(f"/twilio/voice/outbound/{demo.touch_id}",
                                                    {"CallSid": call_sid(), "NewTwilioThing": "1"})
    assert response.status_code == 200 and b"Jane" in response.data
    app.extensions["ivr"].engine.dispose()


def test_rows_sqlalchemy_logs_at_debug_carry_no_patient_data(twilio, demo, caplog):
    """An operator chasing a slow query sets SQLAlchemy's logger to DEBUG: names, dates and
    providers in the rows it logs are redacted (and dropped altogether in production)."""
    import logging

    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": call_sid()})
    twilio.post("/twilio/voice/step?turn=1", {"CallSid": call_sid(), "Digits": "1"})
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy"))
    assert "Row (values redacted)" in logged  # the test saw rows being logged at all
    for detail in ("Jane", "Doe", "Patel", "Main Street", "+1212555"):
        assert detail not in logged


def test_production_drops_the_rows_sqlalchemy_would_log():
    import logging

    from ivr.log_hygiene import RowValues

    row = logging.LogRecord("sqlalchemy.engine.Engine", logging.DEBUG, __file__, 1, "Row %r", (("Jane",),), None)
    statement = logging.LogRecord("sqlalchemy.engine.Engine", logging.INFO, __file__, 1, "SELECT 1", (), None)
    assert RowValues(drop=True).filter(row) is False and RowValues(drop=True).filter(statement) is True


def test_every_twilio_route_has_its_own_list_of_parameters(app):
    from ivr.twilio_params import ROUTES

    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.startswith("/twilio/")}
    assert endpoints and endpoints <= set(ROUTES), endpoints - set(ROUTES)


def test_a_parameter_folded_into_the_account_sid_keeps_the_signature_but_is_refused(twilio, demo, sessions):
    """Review finding: fold `AnsweredBy` and its value into AccountSid's value and every name is
    allowed and appears once. The account is not ours, so the request is refused."""
    from ivr.models import Call

    path = f"/twilio/voice/outbound/{demo.touch_id}"
    folded = {"AccountSid": "AC" + "0" * 32 + "AnsweredBymachine_end_beep", "CallSid": call_sid()}
    response = twilio.client.post(path, data=folded, headers={"X-Twilio-Signature": twilio.validator.compute_signature(
        twilio.base_url + path, {"AccountSid": "AC" + "0" * 32, "AnsweredBy": "machine_end_beep", "CallSid": call_sid()})})
    assert response.status_code == 403
    with sessions() as session:
        assert session.scalars(select(Call)).all() == []


def test_a_from_that_is_not_a_phone_number_is_not_kept(twilio, demo, sessions):
    from ivr.models import Call

    twilio.post(f"/twilio/voice/outbound/{demo.touch_id}",
                {"CallSid": call_sid(), "From": "+12125550100FromCityNEW YORK", "To": demo.patient_phone})
    with sessions() as session:
        call = session.scalars(select(Call)).one()
    assert (call.from_number, call.to_number) == (None, demo.patient_phone)
