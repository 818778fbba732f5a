"""Signed webhooks drive the reminder call; the database records every answer."""

import logging
import re

import pytest
from sqlalchemy import select

from ivr.models import Appointment, Call, CallEvent
from tests.support import PUBLIC_BASE_URL, call_sid, parse_twiml, spoken
from tests.twiml_schema import assert_valid

STEP = "/twilio/voice/step"
JANE_GREETING = ["Hello. This is Riverside Family Clinic calling.",
                 "If you are Jane, press 1. If Jane is not available, press 2."]
MENU = ("To confirm, press 1. To cancel, press 2. To ask for a new time, press 3. "
        "To hear this again, press 9.")


def answer(twilio, demo, sid=None, **extra):
    return twilio.post(f"/twilio/voice/outbound/{demo.touch_id}",
                       {"CallSid": sid or call_sid(), "From": "+12125550100",
                        "To": demo.patient_phone, "CallStatus": "in-progress", **extra})


def press(twilio, digits, sid=None):
    """A key (or silence, None) as Twilio sends it: to the action URL of the call's last TwiML."""
    sid = sid or call_sid()
    data = {"CallSid": sid}
    if digits is not None:
        data["Digits"] = digits
    return twilio.post(twilio.next_url(sid, "answer" if digits is not None else "silence", STEP), data)


def heard(response):
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    assert_valid(response.data)
    return parse_twiml(response.data)


def appointment_status(sessions, demo):
    with sessions() as session:
        return session.get(Appointment, demo.appointment_id).status


def events(sessions, kind=None):
    with sessions() as session:
        query = select(CallEvent).order_by(CallEvent.id)
        if kind:
            query = query.where(CallEvent.kind == kind)
        return [(e.kind, e.detail) for e in session.scalars(query)]


def test_greeting_names_the_clinic_and_asks_for_the_patient_before_any_detail(twilio, demo):
    verbs = heard(answer(twilio, demo))
    assert [v.name for v in verbs] == ["Gather", "Redirect"]
    # The answer to this first question is turn 1: a later copy of it will be known as stale.
    assert verbs[0].attrs["action"] == STEP + "?turn=1" and verbs[1].text == STEP + "?turn=1"
    assert spoken(verbs) == JANE_GREETING


def test_signed_call_walks_from_greeting_to_confirmation(twilio, demo, sessions):
    heard(answer(twilio, demo))
    details = spoken(heard(press(twilio, "1")))
    assert details[1] == MENU
    assert re.fullmatch(r"You have an appointment on [A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2} at 9:30 AM, "
                        r"at the Main Street office, with Doctor Amara Patel\.", details[0]), details[0]
    verbs = heard(press(twilio, "1"))
    assert [v.name for v in verbs] == ["Say", "Hangup"]
    assert spoken(verbs) == ["Thank you. Your appointment is confirmed. We look forward to seeing you. Goodbye."]
    assert appointment_status(sessions, demo) == "confirmed"
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.call_sid, call.outcome, call.state["node"]) == (call_sid(), "confirmed", "done")
    # Nothing was rendered for this call (no job placed it), so the carrier said every prompt.
    assert [detail for _, detail in events(sessions, "step")] == [
        {"turn": 0, "input": {"answered_by": None}, "decision": None,
         "prompts": ["reminder.greeting", "reminder.identify"],
         "carrier_voice": ["reminder.greeting", "reminder.identify"]},
        {"turn": 1, "input": {"digits": "1"}, "decision": "identity_confirmed",
         "prompts": ["reminder.details", "reminder.menu"],
         "carrier_voice": ["reminder.details", "reminder.menu"]},
        {"turn": 2, "input": {"digits": "1"}, "decision": "confirm", "prompts": ["reminder.confirmed"],
         "carrier_voice": ["reminder.confirmed"],
         "changes": [{"appointment_id": demo.appointment_id, "status_from": "booked",
                      "status_to": "confirmed"}],
         "outcome": "confirmed"},
    ]


@pytest.mark.parametrize("keys,status,outcome,last_words", [
    (["1", "2", "1"], "cancelled", "cancelled",
     "Your appointment is cancelled. To book a new one, please call us at 2 1 2, 5 5 5, 0 1 0 0. Goodbye."),
    (["1", "2", "2", "1"], "confirmed", "confirmed", "Thank you. Your appointment is confirmed. "
     "We look forward to seeing you. Goodbye."),
    (["1", "3"], "reschedule_requested", "reschedule_requested", "Thank you. We have noted that you "
     "want a new time. Someone from our office will call you within one business day. Until then, "
     "your appointment stays booked. Goodbye."),
    (["1", "9", "9", "1"], "confirmed", "confirmed", "Thank you. Your appointment is confirmed. "
     "We look forward to seeing you. Goodbye."),
    (["2"], "booked", "wrong_person", "Thank you. We will try again another time. Goodbye."),
    ([None, None, None], "booked", "no_response",
     "We did not get an answer. Please call us at 2 1 2, 5 5 5, 0 1 0 0. Goodbye."),
    (["1", "7", "8", "4"], "booked", "no_response",
     "We did not get an answer. Please call us at 2 1 2, 5 5 5, 0 1 0 0. Goodbye."),
])
def test_every_answer_path_updates_the_record(twilio, demo, sessions, keys, status, outcome, last_words):
    heard(answer(twilio, demo))
    for key in keys:
        verbs = heard(press(twilio, key))
    assert [v.name for v in verbs] == ["Say", "Hangup"]
    assert spoken(verbs)[-1] == last_words
    assert appointment_status(sessions, demo) == status
    with sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == outcome


def test_cancel_is_asked_again_before_it_happens(twilio, demo, sessions):
    heard(answer(twilio, demo))
    heard(press(twilio, "1"))
    assert spoken(heard(press(twilio, "2"))) == [
        "You asked to cancel this appointment. To cancel it, press 1. To keep it, press 2."]
    assert appointment_status(sessions, demo) == "booked"


def test_silence_reprompts_with_an_apology_then_the_same_question(twilio, demo):
    heard(answer(twilio, demo))
    verbs = heard(press(twilio, None))
    assert [v.name for v in verbs] == ["Gather", "Redirect"]
    assert spoken(verbs) == ["Sorry, I did not hear anything.", JANE_GREETING[1]]
    verbs = heard(press(twilio, "5"))
    assert spoken(verbs) == ["Sorry, that key is not one of the choices.", JANE_GREETING[1]]


def test_answering_machine_hears_a_voicemail_with_no_phi_and_no_keys(twilio, demo, sessions):
    verbs = heard(answer(twilio, demo, AnsweredBy="machine_end_beep"))
    assert [v.name for v in verbs] == ["Say", "Hangup"]
    words = " ".join(spoken(verbs))
    assert words == ("Hello. This is Riverside Family Clinic calling with a message. "
                     "Please call us back at 2 1 2, 5 5 5, 0 1 0 0. Thank you.")
    assert "Jane" not in words and "press" not in words
    with sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "voicemail"


def test_a_spanish_speaking_patient_hears_spanish(twilio, demo, sessions):
    """Maria's language is es: her call is in Spanish, with the date said the Spanish way."""
    from ivr.models import Touch, utcnow
    with sessions.begin() as session:
        maria = session.scalars(select(Appointment).join(Appointment.patient)
                                .where(Appointment.patient.has(first_name="Maria"))).one()
        assert maria.patient.language == "es"
        touch = Touch(appointment=maria, step="reminder", due_at=utcnow())
        session.add(touch)
        session.flush()
        touch_id = touch.id
    verbs = heard(twilio.post(f"/twilio/voice/outbound/{touch_id}", {"CallSid": call_sid(5)}))
    assert verbs[0].children[0].attrs == {"language": "es-MX"}
    assert spoken(verbs) == ["Hola. Le llama Riverside Family Clinic.",
                             "Si usted es Maria, oprima 1. Si Maria no está disponible, oprima 2."]
    details = spoken(heard(press(twilio, "1", call_sid(5))))[0]
    assert details.startswith("Tiene una cita el ") and " de " in details and " a las 11:15" in details


def test_voice_answers_only_in_a_language_the_server_can_recognise(twilio, demo, sessions, monkeypatch):
    """With voice answers on, Jane (en) is asked to speak; Maria (es) keys only on a machine with
    no Spanish recogniser (no Whisper base, no Vosk model)."""
    from sqlalchemy import update

    from speech import recognizer

    whisper_model = recognizer.source_for
    monkeypatch.setattr(recognizer, "source_for",
                        lambda language, models: None if language == "es" else whisper_model(language, models))

    from ivr.models import Clinic, Touch, utcnow
    with sessions.begin() as session:
        session.execute(update(Clinic).values(voice_answers=True))
        maria = session.scalars(select(Appointment).where(Appointment.patient.has(first_name="Maria"))).one()
        touch = Touch(appointment=maria, step="reminder", due_at=utcnow())
        session.add(touch)
        session.flush()
        maria_touch = touch.id
    jane = heard(answer(twilio, demo))
    assert [v.name for v in jane] == ["Say", "Say", "Record", "Redirect"]
    maria = heard(twilio.post(f"/twilio/voice/outbound/{maria_touch}", {"CallSid": call_sid(6)}))
    assert [v.name for v in maria] == ["Gather", "Redirect"]


def test_unsigned_requests_to_every_twilio_route_get_403(app, client, demo):
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/twilio/")]
    assert len(rules) >= 8
    for rule in rules:
        path = re.sub(r"<int[^>]*:\w+>", "1", rule.rule)
        for kwargs in ({"data": {"CallSid": call_sid(), "Digits": "1"}},
                       {"data": {"CallSid": call_sid()}, "headers": {"X-Twilio-Signature": "bogus"}},
                       {"json": {"CallSid": call_sid()}, "headers": {"X-Twilio-Signature": "bogus"}},
                       {"data": "[]", "content_type": "application/json",
                        "headers": {"X-Twilio-Signature": "bogus"}}):
            assert client.post(path, **kwargs).status_code == 403, (path, kwargs)


@pytest.mark.parametrize("path", [STEP, "/twilio/status"])
def test_wrong_signature_gets_403_and_changes_nothing(twilio, demo, sessions, path):
    response = twilio.post(path, {"CallSid": call_sid(), "Digits": "1", "CallStatus": "completed"},
                           signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    assert events(sessions) == []


def test_signature_over_other_params_is_rejected(twilio, demo, client):
    """A valid signature for Digits=2 does not authorise Digits=1."""
    heard(answer(twilio, demo))
    good = twilio.validator.compute_signature(PUBLIC_BASE_URL + STEP, {"CallSid": call_sid(), "Digits": "2"})
    response = client.post(STEP, data={"CallSid": call_sid(), "Digits": "1"},
                           headers={"X-Twilio-Signature": good})
    assert response.status_code == 403


def test_signature_is_checked_against_the_public_base_url(demo, client):
    """Behind a TLS proxy Flask sees http://localhost; Twilio signed https://ivr.example.test."""
    from tests.support import TwilioClient
    as_seen_locally = TwilioClient(client, base_url="http://localhost")
    assert as_seen_locally.post(f"/twilio/voice/outbound/{demo.touch_id}",
                                {"CallSid": call_sid()}).status_code == 403


@pytest.mark.parametrize("data,status", [
    ({}, 400),
    ({"CallSid": "not-a-sid"}, 400),
    ({"CallSid": call_sid(), "Digits": "1<script>"}, 400),
])
def test_malformed_webhooks_get_400(twilio, demo, data, status):
    assert twilio.post(STEP, data).status_code == status


def test_unknown_touch_is_404(twilio, demo):
    assert twilio.post("/twilio/voice/outbound/999999", {"CallSid": call_sid()}).status_code == 404


def test_step_for_an_unknown_call_still_answers_valid_twiml(twilio, demo):
    verbs = heard(press(twilio, "1", sid=call_sid(42)))
    # No record to hang a call-back task on, so nothing is promised.
    assert spoken(verbs) == ["Sorry, something went wrong on our side. Please call us again later. Goodbye."]
    assert [v.name for v in verbs] == ["Say", "Hangup"]


def test_exception_in_a_step_apologises_and_transfers_to_staff_without_logging_phi(
        twilio, demo, sessions, monkeypatch, caplog):
    heard(answer(twilio, demo))

    message = "Jane Doe was born on 1950-04-12"  # PHI arrives at run time, never in source

    def broken(*_args):
        raise RuntimeError(message)

    monkeypatch.setattr("call_flows.step", broken)
    with caplog.at_level(logging.INFO):
        verbs = heard(press(twilio, "1"))
    assert [(v.name, v.text) for v in verbs] == [
        ("Say", "Sorry, something went wrong on our side. Please hold while I connect you to our staff."),
        ("Dial", "")]
    assert verbs[1].attrs == {"action": "/twilio/voice/failover-dial", "method": "POST"}
    assert [(n.name, n.attrs, n.text) for n in verbs[1].children] == [("Number", {}, demo.staff_phone)]
    assert "RuntimeError" in caplog.text and call_sid() in caplog.text
    assert "Jane" not in caplog.text and "1950" not in caplog.text
    assert events(sessions, "error") == [("error", {"error": "RuntimeError", "prompts": [
        "common.apology_transfer"]})]
    with sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "error"


def test_no_phi_in_logs_during_a_whole_call(twilio, demo, caplog):
    with caplog.at_level(logging.DEBUG):
        heard(answer(twilio, demo))
        for key in ("1", "9", "1"):
            heard(press(twilio, key))
    for phi in ("Jane", "Doe", "Patel", "Main Street", demo.patient_phone):
        assert phi not in caplog.text


def test_concurrent_calls_all_get_their_answers(app, sessions, demo):
    """Many calls at once on one database: none may fail with a locked database."""
    import threading

    from ivr.models import Appointment, Touch, utcnow
    from tests.support import TwilioClient

    with sessions.begin() as session:
        touches = [Touch(appointment=a, step="reminder", due_at=utcnow()) for a in session.scalars(
            select(Appointment).where(Appointment.id != demo.appointment_id))]
        session.add_all(touches)
        session.flush()
        touch_ids = [demo.touch_id] + [t.id for t in touches]
    failures = []

    def caller(n):
        twilio = TwilioClient(app.test_client())
        for k in range(6):
            sid = call_sid(1000 + n * 10 + k)
            for path, data in ((f"/twilio/voice/outbound/{touch_ids[k % len(touch_ids)]}", {}),
                               (STEP + "?turn=1", {"Digits": "9"})):
                response = twilio.post(path, {"CallSid": sid, **data})
                if b"<Gather" not in response.data:
                    failures.append(response.data)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with sessions() as session:
        assert len(session.scalars(select(Call)).all()) == 36


def test_a_dead_database_connection_is_replaced_without_the_caller_noticing(twilio, demo, database_url):
    """After a PostgreSQL restart the pooled connection is dead; the turn runs again on a new one."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connection to lose")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    heard(answer(twilio, demo))  # the pool now holds a live connection
    admin = create_engine(database_url, poolclass=NullPool)
    with admin.connect() as connection:
        killed = connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert killed >= 1
    assert spoken(heard(press(twilio, "1")))[1] == MENU


@pytest.mark.parametrize("status,words", [
    ("completed", []), ("answered", []),
    ("no-answer", ["Sorry, something went wrong on our side. Please call us again later. Goodbye."]),
    ("busy", ["Sorry, something went wrong on our side. Please call us again later. Goodbye."]),
])
def test_the_transfer_after_a_failure_ends_without_touching_the_database(twilio, demo, monkeypatch, status, words):
    """Even with the database gone, the caller gets a clear ending and never loops back."""
    def no_database(*_args, **_kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr("ivr.calls.load_call", no_database)
    verbs = heard(twilio.post("/twilio/voice/failover-dial", {"CallSid": call_sid(), "DialCallStatus": status}))
    assert spoken(verbs) == words and verbs[-1].name == "Hangup"


def test_a_database_outage_mid_call_transfers_once_then_ends(app, twilio, demo, monkeypatch):
    import dataclasses

    heard(answer(twilio, demo))
    monkeypatch.setattr("ivr.calls.load_call", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("down")))
    services = app.extensions["ivr"]
    services.settings = dataclasses.replace(services.settings, fallback_staff_number="+12125550198")
    first = heard(press(twilio, "1"))
    assert [v.name for v in first] == ["Say", "Dial"] and first[1].children[0].text == "+12125550198"
    action = first[1].attrs["action"]
    after = heard(twilio.post(action, {"CallSid": call_sid(), "DialCallStatus": "no-answer"}))
    assert [v.name for v in after] == ["Say", "Hangup"]


def test_whisper_still_speaks_when_the_database_fails(twilio, demo, monkeypatch):
    monkeypatch.setattr("ivr.calls.load_call", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("down")))
    verbs = heard(twilio.post("/twilio/voice/whisper?prompt=inbound.whisper",
                              {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)}))
    assert spoken(verbs) == ["A caller from a number we do not know."]


def test_status_callback_during_a_database_outage_is_503_and_logs_no_numbers(twilio, demo, monkeypatch, caplog):
    monkeypatch.setattr("ivr.calls.apply_status",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError(demo.patient_phone)))
    response = twilio.post("/twilio/status", {"CallSid": call_sid(), "CallStatus": "completed"})
    assert response.status_code == 503
    assert "RuntimeError" in caplog.text and demo.patient_phone not in caplog.text


def test_database_errors_do_not_carry_phone_numbers(sessions, demo):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    with pytest.raises(DBAPIError) as raised:
        with sessions.begin() as session:
            session.execute(text("INSERT INTO nowhere VALUES (:phone)"), {"phone": demo.patient_phone})
    assert demo.patient_phone not in str(raised.value)


def test_a_recogniser_failure_is_heard_as_not_understood(twilio, demo, sessions, monkeypatch):
    """Whatever goes wrong while recognising, the caller gets valid TwiML and is asked again."""
    from sqlalchemy import update

    from ivr.models import Clinic
    with sessions.begin() as session:
        session.execute(update(Clinic).values(voice_answers=True))
    heard(answer(twilio, demo))

    def broken(*_args, **_kwargs):
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr("ivr.answers.recognise", broken)
    verbs = heard(twilio.post(STEP + "?turn=1", {"CallSid": call_sid(), "RecordingUrl": "https://api.twilio.com/x",
                                     "RecordingSid": "RE" + "1" * 32}))
    assert spoken(verbs)[0] == "Sorry, I did not understand."
    assert [v.name for v in verbs] == ["Say", "Say", "Record", "Redirect"]


def _details_heard(twilio, demo, sid=None):
    heard(answer(twilio, demo, sid))
    return spoken(heard(press(twilio, "1", sid)))[0]


def test_a_patient_in_los_angeles_hears_the_new_york_time_of_the_visit_with_its_zone(twilio, demo, sessions):
    """The visit is at 9:30 on the clinic's wall: converting it to 6:30 would send them at the
    wrong hour. Their own zone still decides when they may be rung."""
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).patient.timezone = "America/Los_Angeles"
    assert " at 9:30 AM Eastern Time, at the Main Street office" in _details_heard(twilio, demo)


def test_the_visit_time_is_said_on_the_clock_of_its_location(twilio, demo, sessions):
    """A New York clinic's Chicago office: the visit's 9:30 New York time is 8:30 there, and a
    patient who lives in New York hears the zone of the place they are going to."""
    with sessions.begin() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        appointment.location.timezone = "America/Chicago"
        assert appointment.patient.timezone is None  # the clinic's: New York
    assert " at 8:30 AM Central Time, at the Main Street office" in _details_heard(twilio, demo)
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).patient.timezone = "America/Chicago"
    assert " at 8:30 AM, at the Main Street office" in _details_heard(twilio, demo, call_sid(2))
