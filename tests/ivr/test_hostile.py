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
