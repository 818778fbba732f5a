"""Calls to a clinic's number through the webhooks: language offer, identity by date of birth,
the menu, refills, and a person with a whisper that says who is calling and why."""

import datetime as dt

import pytest
from sqlalchemy import select

from ivr.models import (Appointment, Call, CallEvent, CallerLanguage, Escalation, Patient, Prescription, Task,
                        utcnow)
from speech.common import Voice
from tests.support import PUBLIC_BASE_URL, call_sid, parse_twiml, race, spoken
from tests.twiml_schema import assert_valid

CLINIC_NUMBER = "+12125550100"
STRANGER = "+12125550111"
JANE = "+12125550143"          # the demo's Jane Doe, born April 12, 1950
JANE_DOB = "04121950"
STEP = "/twilio/voice/step"
WELCOME = ["Thank you for calling Riverside Family Clinic.",
           "If this is an emergency, hang up and dial 9 1 1 now.",
           "Para español, oprima 2.", "Pour le français, appuyez sur 3.", "한국어는 4번을 누르십시오."]
DOB = ("Please enter your date of birth. Use two numbers for the month, two for the day, and four for "
       "the year. For April 12, 1950, you would press 0 4 1 2 1 9 5 0.")
MENU = ("For your next appointment, press 1. For a prescription refill, press 2. To talk to a person, "
        "press 3. To hear this again, press 9.")


@pytest.fixture(autouse=True)
def ringing_from_the_call(demo, sessions):
    """Here a caller's call rings the staff lines itself (tests/ivr/test_caller_queue.py: the
    queue, the clinic's default)."""
    from sqlalchemy import update

    from ivr.models import Clinic

    with sessions.begin() as session:
        session.execute(update(Clinic).values(queue_callers=False))


def ring(twilio, caller=STRANGER, to=CLINIC_NUMBER, sid=None):
    return twilio.post("/twilio/voice/inbound", {"CallSid": sid or call_sid(7), "From": caller,
                                                "To": to, "Direction": "inbound"})


def press(twilio, digits, sid=None):
    """Keys (or silence, None) to the action URL of the call's last TwiML."""
    sid = sid or call_sid(7)
    data = {"CallSid": sid}
    if digits is not None:
        data["Digits"] = digits
    return twilio.post(twilio.next_url(sid, "answer" if digits is not None else "silence", STEP), data)


def heard(response):
    assert response.status_code == 200, response.data
    assert_valid(response.data)
    return parse_twiml(response.data)


def identified(twilio, caller=JANE, dob=JANE_DOB, sid=None):
    """Ring from a number, let the language offer pass, enter a date of birth."""
    heard(ring(twilio, caller, sid=sid))
    heard(press(twilio, None, sid))
    return heard(press(twilio, dob, sid))


STAFF_CHOICE = "Press 1 to take the call. Press 2 to pass."


def whisper_heard(twilio, verbs, sid=None):
    """What staff hear before the caller in these verbs is put through, before they are asked to
    take the call or pass it."""
    (dial,) = [v for v in verbs if v.name == "Dial"]
    url = dial.children[0].attrs["url"]
    said = spoken(heard(twilio.post(url, {"CallSid": call_sid(8), "ParentCallSid": sid or call_sid(7)})))
    assert said[-1] == STAFF_CHOICE
    return said[:-1]


def test_the_welcome_says_what_to_do_in_an_emergency_and_offers_each_language_in_its_own_words(twilio, demo):
    verbs = heard(ring(twilio))
    (gather,) = [v for v in verbs if v.name == "Gather"]
    assert gather.attrs["timeout"] == "3" and gather.attrs["numDigits"] == "1"
    assert spoken(verbs) == WELCOME
    assert [c.attrs["language"] for c in gather.children] == ["en-US", "en-US", "es-MX", "fr-CA", "ko-KR"]


def test_an_unknown_number_is_asked_like_any_other_and_staff_hear_it_is_unknown(twilio, demo, sessions):
    """The line never tells whoever calls whether a number is a patient's."""
    heard(ring(twilio))
    assert spoken(heard(press(twilio, None))) == [DOB, "To talk to a person at any time, press 0."]
    assert spoken(heard(press(twilio, JANE_DOB)))[0] == "Sorry, that date of birth does not match our records."
    verbs = heard(press(twilio, "0"))
    assert spoken(verbs) == ["Please hold while I connect you to our staff."]
    assert verbs[-1].name == "Dial" and verbs[-1].children[0].text == demo.staff_phone
    assert whisper_heard(twilio, verbs) == ["A caller from a number we do not know."]
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.direction, call.flow, call.patient_id) == ("inbound", "inbound", None)


def test_a_repeated_date_of_birth_request_keeps_no_digits_either(twilio, demo, sessions):
    heard(ring(twilio, JANE))
    heard(press(twilio, None))
    url = twilio.next_url(call_sid(7), "answer", STEP)
    heard(twilio.post(url, {"CallSid": call_sid(7), "Digits": JANE_DOB}))
    heard(twilio.post(url, {"CallSid": call_sid(7), "Digits": JANE_DOB}))    # the carrier sent it twice
    with sessions() as session:
        stale = session.scalars(select(CallEvent).where(CallEvent.kind == "stale_answer")).one()
        every = [e.detail for e in session.scalars(select(CallEvent))]
    assert stale.detail["input"] == {"digits": "8 digits, not kept"}
    assert JANE_DOB not in str(every)


def test_after_a_cancel_the_menu_reads_the_next_appointment_there_is(twilio, demo, sessions):
    with sessions.begin() as session:
        first = session.get(Appointment, demo.appointment_id)
        session.add(Appointment(patient_id=first.patient_id, location_id=first.location_id,
                                provider_name="Daniel Okafor", provider_title="doctor",
                                starts_at=first.starts_at + dt.timedelta(days=14)))
    identified(twilio)
    heard(press(twilio, "1"))
    heard(press(twilio, "2"))
    heard(press(twilio, "1"))                     # cancelled
    details = spoken(heard(press(twilio, "1")))[0]
    assert details.endswith("with Doctor Daniel Okafor."), details


def test_a_patient_enters_their_date_of_birth_and_hears_the_menu_by_name(twilio, demo, sessions):
    heard(ring(twilio, JANE))
    verbs = heard(press(twilio, None))
    (gather,) = [v for v in verbs if v.name == "Gather"]
    assert (gather.attrs["numDigits"], gather.attrs["timeout"]) == ("8", "10")
    assert spoken(verbs) == [DOB, "To talk to a person at any time, press 0."]
    verbs = heard(press(twilio, JANE_DOB))
    assert spoken(verbs) == ["Thank you, Jane.", MENU]
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.patient_id, call.appointment_id) == (
            session.scalars(select(Patient.id).where(Patient.phone == JANE)).one(), demo.appointment_id)
        inputs = [e.detail["input"] for e in session.scalars(select(CallEvent).order_by(CallEvent.id))]
    # The date of birth is personal data: the audit trail keeps that eight keys came, not which.
    assert inputs[-1] == {"digits": "8 digits, not kept"}
    assert JANE_DOB not in str(inputs)


def test_nothing_personal_is_said_before_the_date_of_birth_matches(twilio, demo, sessions):
    heard(ring(twilio, JANE))
    heard(press(twilio, None))
    said = spoken(heard(press(twilio, "01011990")))
    assert said == ["Sorry, that date of birth does not match our records.", DOB,
                    "To talk to a person at any time, press 0."]
    verbs = heard(press(twilio, "12121950"))
    assert spoken(verbs)[:2] == ["Sorry, that date of birth does not match our records.",
                                 "Please hold while I connect you to our staff."]
    assert whisper_heard(twilio, verbs) == [
        "A caller from a patient's number. Their date of birth did not match, or was not given. Check who "
        "they are before you share details."]
    with sessions() as session:
        assert session.scalars(select(Call.patient_id)).one() is None


def test_the_next_appointment_is_read_and_confirmed(twilio, demo, sessions):
    identified(twilio)
    details = spoken(heard(press(twilio, "1")))
    assert details[0].startswith("You have an appointment on ") and details[0].endswith(
        "at 9:30 AM, at the Main Street office, with Doctor Amara Patel.")
    assert details[1] == "To confirm it, press 1. To cancel it, press 2. To hear it again, press 9."
    assert spoken(heard(press(twilio, "1"))) == [
        "Thank you. Your appointment is confirmed.", "Is there anything else? If you are done, you can hang up.",
        MENU]
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).status == "confirmed"


def test_a_cancel_is_asked_again_before_it_happens(twilio, demo, sessions):
    identified(twilio)
    heard(press(twilio, "1"))
    assert spoken(heard(press(twilio, "2"))) == [
        "You asked to cancel this appointment. To cancel it, press 1. To keep it, press 2."]
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).status == "booked"
    assert spoken(heard(press(twilio, "1")))[0] == "Okay. Your appointment is cancelled. We hope to see you soon."
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).status == "cancelled"


def test_a_refill_is_chosen_by_name_and_becomes_a_task_about_that_prescription(twilio, demo, sessions):
    identified(twilio)
    assert spoken(heard(press(twilio, "2"))) == [
        "Which prescription do you want refilled?", "For metformin, press 1.", "For lisinopril, press 2.",
        "To hear this again, press 9. To talk to a person, press 0."]
    said = spoken(heard(press(twilio, "2")))
    assert said[0].startswith("Thank you. We have your refill request.") and said[-1] == MENU
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        prescription = session.get(Prescription, task.prescription_id)
        assert (task.kind, prescription.medication, task.patient_id) == (
            "refill_request", "lisinopril", prescription.patient_id)
        assert task.due_at > utcnow()


def test_a_refill_asked_for_on_the_line_ends_the_refill_prompt_waiting_for_it(twilio, demo, sessions):
    """Jane's metformin prompt is planned (it runs out in three days); she calls first and asks."""
    import datetime as dt

    from ivr.models import Touch
    from outbound import campaigns

    with sessions.begin() as session:
        campaigns.plan_campaigns(session, utcnow(), utcnow() + dt.timedelta(hours=1), write=True)
    identified(twilio)
    heard(press(twilio, "2"))
    heard(press(twilio, "1"))   # metformin
    with sessions() as session:
        prompt = session.scalars(select(Touch).where(Touch.prescription_id.is_not(None))).one()
        task = session.scalars(select(Task)).one()
    assert (prompt.prescription_id, prompt.status, prompt.last_error) == (task.prescription_id, "skipped",
                                                                           "refill requested")


def test_a_person_hears_who_is_calling_and_why_in_the_clinics_language(twilio, demo, sessions):
    heard(ring(twilio, JANE))
    heard(press(twilio, "2"))                       # Jane chooses Spanish for herself
    heard(press(twilio, JANE_DOB))
    verbs = heard(press(twilio, "0"))
    assert spoken(verbs) == ["Espere mientras le comunico con nuestro personal."]
    assert whisper_heard(twilio, verbs) == [
        "A call from Jane. Their date of birth matched. They asked for a person."]


def test_a_chosen_language_is_remembered_for_the_number(twilio, demo, sessions):
    heard(ring(twilio, JANE))
    assert spoken(heard(press(twilio, "2")))[0].startswith("Por favor marque su fecha de nacimiento.")
    with sessions() as session:
        assert session.scalars(select(CallerLanguage.language).where(CallerLanguage.phone == JANE)).one() == "es"
    verbs = heard(ring(twilio, JANE, sid=call_sid(9)))
    assert spoken(verbs)[0] == "Gracias por llamar a Riverside Family Clinic."
    assert "For English, press 1." in spoken(verbs) and "Para español, oprima 2." not in spoken(verbs)


def test_a_household_sharing_a_number_is_told_apart_by_date_of_birth(twilio, demo, sessions):
    with sessions.begin() as session:
        jane = session.scalars(select(Patient).where(Patient.phone == JANE)).one()
        john = Patient(clinic_id=jane.clinic_id, first_name="John", last_name="Doe", phone=JANE,
                       date_of_birth=dt.date(1948, 11, 2), language="en")
        session.add(john)
        session.flush()
        john_id = john.id
    assert spoken(identified(twilio, dob="11021948"))[0] == "Thank you, John."
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.patient_id, call.appointment_id) == (john_id, None)
    assert spoken(heard(press(twilio, "1")))[0] == "We have no upcoming appointment for you."


def test_an_appointment_handed_to_another_household_member_mid_call_is_not_read_to_the_caller(
        twilio, demo, sessions):
    with sessions.begin() as session:
        jane = session.scalars(select(Patient).where(Patient.phone == JANE)).one()
        john = Patient(clinic_id=jane.clinic_id, first_name="John", last_name="Doe", phone=JANE,
                       date_of_birth=dt.date(1948, 11, 2), language="en")
        session.add(john)
    identified(twilio)
    with sessions.begin() as session:                # staff: "that visit is John's, not Jane's"
        session.get(Appointment, demo.appointment_id).patient = session.scalars(
            select(Patient).where(Patient.first_name == "John")).one()
    assert spoken(heard(press(twilio, "1")))[0] == "We have no upcoming appointment for you."


def test_two_misses_at_the_menu_lead_to_a_person_never_a_hang_up(twilio, demo, sessions):
    identified(twilio)
    assert spoken(heard(press(twilio, None)))[0] == "Sorry, I did not hear anything."
    verbs = heard(press(twilio, "7"))
    assert spoken(verbs) == ["Sorry, that key is not one of the choices.",
                             "Please hold while I connect you to our staff."]
    assert whisper_heard(twilio, verbs) == [
        "A call from Jane. Their date of birth matched. They had trouble with the menu."]


def test_nobody_answering_a_caller_who_then_waits_means_a_call_back_task(twilio, demo, sessions):
    identified(twilio)
    heard(press(twilio, "3"))
    heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                      {"CallSid": call_sid(7), "DialCallStatus": "no-answer"}))
    verbs = heard(press(twilio, None))         # no choice between a call back and a message
    assert spoken(verbs) == ["Sorry, no one could take your call. Someone from our office will call you back "
                             "within one business day. Goodbye."]
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        call = session.scalars(select(Call)).one()
        assert (task.kind, task.patient_id, task.call_id, call.outcome) == (
            "call_back", call.patient_id, call.id, "call_back_promised")


def test_a_number_no_clinic_uses_is_not_in_service(twilio, demo, sessions):
    verbs = heard(ring(twilio, to="+12125550999"))
    assert spoken(verbs) == ["Sorry, this number is not in service. Goodbye."]
    assert [v.name for v in verbs] == ["Say", "Hangup"]
    with sessions() as session:
        assert session.scalars(select(Call)).all() == []


def test_whisper_refuses_other_prompts(twilio, demo):
    heard(ring(twilio))
    response = twilio.post("/twilio/voice/whisper?prompt=reminder.details",
                           {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)})
    assert response.status_code == 400


def test_bad_dial_status_is_400_and_unsigned_inbound_is_403(twilio, client, demo):
    assert twilio.post("/twilio/voice/dial", {"CallSid": call_sid(7), "DialCallStatus": "maybe"}).status_code == 400
    assert client.post("/twilio/voice/inbound", data={"CallSid": call_sid(7)}).status_code == 403


def test_inbound_status_callbacks_use_the_generic_route(twilio, demo, sessions):
    heard(ring(twilio))
    twilio.post("/twilio/status", {"CallSid": call_sid(7), "CallStatus": "completed"})
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert (call.status, call.outcome) == ("completed", "hung_up")


def test_once_rendered_the_welcome_plays_each_language_in_its_own_voice(twilio, demo, runner, app):
    """`ivr prompts render` covers the inbound line's opening: nothing in it names a patient."""
    assert runner.invoke(args=["prompts", "render"]).exit_code == 0
    cache = app.extensions["ivr"].prompt_audio

    def url(voice, text):
        return f"{PUBLIC_BASE_URL}/audio/{cache.key(voice, text)}.wav"

    (gather,) = [v for v in heard(ring(twilio)) if v.name == "Gather"]
    assert [(c.name, c.text) for c in gather.children] == [
        ("Play", url(Voice("en", "gmw/en-us", 150), WELCOME[0])),
        ("Play", url(Voice("en", "gmw/en-us", 150), WELCOME[1])),
        ("Play", url(Voice("es", "roa/es-419", 150), WELCOME[2])),
        ("Play", url(Voice("fr", "roa/fr", 150), WELCOME[3])),
        ("Play", url(Voice("ko", "ko", 150), WELCOME[4]))]


def test_staff_take_the_call_with_1_or_pass_it_and_the_choice_is_noted(twilio, demo, sessions):
    identified(twilio)
    verbs = heard(press(twilio, "3"))
    (dial,) = [v for v in verbs if v.name == "Dial"]
    whisper = heard(twilio.post(dial.children[0].attrs["url"], {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)}))
    (gather,) = [v for v in whisper if v.name == "Gather"]
    assert (gather.attrs["numDigits"], gather.attrs["timeout"], whisper[-1].name) == ("1", "8", "Hangup")
    take = heard(twilio.post(gather.attrs["action"], {"CallSid": call_sid(8), "ParentCallSid": call_sid(7),
                                                      "Digits": "1"}))
    passed = heard(twilio.post(gather.attrs["action"], {"CallSid": call_sid(8), "ParentCallSid": call_sid(7),
                                                        "Digits": "2"}))
    assert (take, [v.name for v in passed]) == ([], ["Hangup"])
    with sessions() as session:
        choices = [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.kind == "staff")
                                                     .order_by(CallEvent.id))]
    assert choices == [{"accepted": True}, {"accepted": False}]


def test_a_second_staff_line_is_tried_when_the_first_does_not_take_the_call(twilio, demo, sessions, runner):
    result = runner.invoke(args=["clinics", "staff-lines", "1", "+12125550198"])
    assert result.output.strip() == f"clinic 1: staff lines in order: {demo.staff_phone}, +12125550198"
    identified(twilio)
    first = heard(press(twilio, "3"))
    assert [v for v in first if v.name == "Dial"][0].children[0].text == demo.staff_phone
    second = heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                               {"CallSid": call_sid(7), "DialCallStatus": "no-answer"}))
    assert spoken(second) == ["Please stay on the line. I am trying someone else."]
    assert [v for v in second if v.name == "Dial"][0].children[0].text == "+12125550198"
    bad = runner.invoke(args=["clinics", "staff-lines", "1", "555-0198"])
    assert bad.exit_code == 2 and "'555-0198' is not a phone number in E.164 form" in bad.output


def escalations(sessions):
    with sessions() as session:
        return [(e.reason, e.verified, e.outcome, e.staff_phone, e.answered_at is not None)
                for e in session.scalars(select(Escalation).order_by(Escalation.id))]


def test_an_escalation_records_why_who_took_it_and_how_long_it_took(twilio, demo, sessions, runner):
    runner.invoke(args=["clinics", "staff-lines", "1", "+12125550198"])
    identified(twilio)
    heard(press(twilio, "3"))
    assert escalations(sessions) == [("asked", True, None, None, False)]
    heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                      {"CallSid": call_sid(7), "DialCallStatus": "no-answer"}))
    heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                      {"CallSid": call_sid(7), "DialCallStatus": "completed"}))
    assert escalations(sessions) == [("asked", True, "answered", "+12125550198", True)]


def test_a_caller_who_hangs_up_while_being_put_through_abandoned_it(twilio, demo, sessions):
    heard(ring(twilio))
    heard(press(twilio, "0"))                    # a person, at the language offer
    twilio.post("/twilio/status", {"CallSid": call_sid(7), "CallStatus": "completed"})
    assert escalations(sessions) == [("unknown", False, "abandoned", None, False)]


def test_no_answer_anywhere_ends_the_escalation_with_a_call_back(twilio, demo, sessions):
    identified(twilio)
    heard(press(twilio, "3"))
    heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                      {"CallSid": call_sid(7), "DialCallStatus": "busy"}))
    assert escalations(sessions) == [("asked", True, None, None, False)]      # offered a call back
    heard(press(twilio, None))
    assert escalations(sessions) == [("asked", True, "call_back", None, False)]


def chose_a_call_back(twilio):
    identified(twilio)
    heard(press(twilio, "3"))
    offer = spoken(heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                                     {"CallSid": call_sid(7), "DialCallStatus": "no-answer"})))
    assert offer == ["No one is free to take your call right now. To get a call back as soon as someone is "
                     "free, press 1. To leave a message, press 2."]
    return spoken(heard(press(twilio, "1")))


def test_a_caller_who_chooses_a_call_back_is_rung_once_staff_take_it(app, twilio, demo, sessions, dialer):
    from outbound.callbacks import call_back

    assert chose_a_call_back(twilio) == ["Thank you. We will call you back as soon as someone is free. Goodbye."]
    with sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        assert (escalation.outcome, escalation.callback_status) == ("call_back", "planned")
    with app.app_context():
        first, again = call_back(escalation.id), call_back(escalation.id)   # a job that runs twice
    assert again is None and [r.to for r in dialer.requests] == [demo.staff_phone]
    assert dialer.requests[0].url.endswith(f"/twilio/voice/callback/{escalation.id}")
    assert dialer.requests[0].machine_detection is False       # staff hear the whisper at once
    staff_sid = first
    whisper = heard(twilio.post(f"/twilio/voice/callback/{escalation.id}", {"CallSid": staff_sid}))
    assert spoken(whisper) == ["A call back for Jane, who asked to talk to someone. Their date of birth matched. "
                               "Press 1 to call them now."]
    (gather,) = [v for v in whisper if v.name == "Gather"]
    dial = heard(twilio.post(gather.attrs["action"], {"CallSid": staff_sid, "Digits": "1"}))
    assert [(v.name, v.attrs.get("callerId"), v.children[0].text) for v in dial] == [
        ("Dial", "+12125550100", JANE)]
    replay = heard(twilio.post(gather.attrs["action"], {"CallSid": staff_sid, "Digits": "1"}))
    assert [v.name for v in replay] == ["Hangup"]                  # dialled once, however often asked
    # The staff call's end may be reported before the caller's leg's result: it waits for it.
    twilio.post(f"/twilio/status/callback/{escalation.id}", {"CallSid": staff_sid, "CallStatus": "completed"})
    heard(twilio.post(dial[0].attrs["action"], {"CallSid": staff_sid, "DialCallStatus": "completed"}))
    with sessions() as session:
        done = session.get(Escalation, escalation.id)
        assert (done.callback_status, done.answered_at is not None, first) == ("done", True, done.callback_call_sid)
        assert session.scalars(select(Task)).all() == []


def test_staff_who_do_not_take_the_call_back_leave_it_to_a_person_as_a_task(app, twilio, demo, sessions, dialer):
    from outbound.callbacks import call_back

    chose_a_call_back(twilio)
    with sessions() as session:
        escalation_id = session.scalars(select(Escalation.id)).one()
    with app.app_context():
        staff_sid = call_back(escalation_id)
    hung_up = heard(twilio.post(f"/twilio/voice/callback/{escalation_id}/accept", {"CallSid": staff_sid, "Digits": "2"}))
    assert [v.name for v in hung_up] == ["Hangup"]
    for _ in range(2):                                  # the carrier may repeat a callback
        twilio.post(f"/twilio/status/callback/{escalation_id}", {"CallSid": staff_sid, "CallStatus": "completed"})
    with sessions() as session:
        assert session.get(Escalation, escalation_id).callback_status == "failed"
        task = session.scalars(select(Task)).one()
        assert (task.kind, task.patient_id is not None) == ("call_back", True)


def test_a_call_back_for_a_caller_not_identified_names_no_one(app, twilio, demo, sessions, dialer):
    from outbound.callbacks import call_back

    heard(ring(twilio))
    heard(press(twilio, "0"))                           # a person, before any date of birth
    heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                      {"CallSid": call_sid(7), "DialCallStatus": "busy"}))
    heard(press(twilio, "1"))
    with sessions() as session:
        escalation_id = session.scalars(select(Escalation.id)).one()
    with app.app_context():
        call_back(escalation_id)
    whisper = spoken(heard(twilio.post(f"/twilio/voice/callback/{escalation_id}", {"CallSid": call_sid(9)})))
    assert whisper == ["A call back for a caller who asked to talk to someone. Check who they are before you share "
                       "details. Press 1 to call them now."]


def test_a_planned_call_back_whose_job_was_lost_is_queued_again_by_reconcile(app, twilio, demo, sessions):
    from outbound.callbacks import job_id_for_call_back
    from outbound.queueing import outbound_queue
    from outbound.reconciler import reconcile_all

    chose_a_call_back(twilio)
    with sessions() as session:
        escalation_id = session.scalars(select(Escalation.id)).one()
    services = app.extensions["ivr"]
    queue = outbound_queue(services.redis)
    queue.fetch_job(job_id_for_call_back(escalation_id)).delete()     # Redis lost it
    report = reconcile_all(services, utcnow())
    assert report.call_backs == 1 and "1 call back(s) queued again" in report.summary()
    assert queue.fetch_job(job_id_for_call_back(escalation_id)) is not None
    assert reconcile_all(services, utcnow()).call_backs == 0


def staff_press(twilio, key):
    """Jane asks for a person; the staff phone answers, hears the whisper and presses a key."""
    identified(twilio)
    verbs = heard(press(twilio, "3"))
    (dial,) = [v for v in verbs if v.name == "Dial"]
    whisper = heard(twilio.post(dial.children[0].attrs["url"], {"CallSid": call_sid(8), "ParentCallSid": call_sid(7)}))
    (gather,) = [v for v in whisper if v.name == "Gather"]
    twilio.post(gather.attrs["action"], {"CallSid": call_sid(8), "ParentCallSid": call_sid(7), "Digits": key})


def test_a_call_staff_took_stays_answered_whatever_order_the_carrier_reports_in(twilio, demo, sessions):
    """The caller's own 'completed' may arrive before the transfer's result."""
    staff_press(twilio, "1")
    twilio.post("/twilio/status", {"CallSid": call_sid(7), "CallStatus": "completed"})
    twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                {"CallSid": call_sid(7), "DialCallStatus": "completed"})
    assert escalations(sessions) == [("asked", True, "answered", demo.staff_phone, True)]
    with sessions() as session:
        call = session.scalars(select(Call)).one()
        assert call.outcome == "transferred"


def test_a_transfer_staff_passed_is_not_taken_even_if_the_carrier_says_completed(twilio, demo, sessions):
    staff_press(twilio, "2")
    after = spoken(heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                                     {"CallSid": call_sid(7), "DialCallStatus": "completed"})))
    assert after[0].startswith("No one is free to take your call right now.")


def test_a_caller_id_abroad_or_premium_is_never_offered_a_call_back(twilio, demo, sessions):
    """A forged caller ID must not make the clinic ring a paid or foreign number."""
    heard(ring(twilio, caller="+33142685300"))
    heard(press(twilio, "0"))
    said = spoken(heard(twilio.post(twilio.next_url(call_sid(7), "dial", "/twilio/voice/dial"),
                                    {"CallSid": call_sid(7), "DialCallStatus": "no-answer"})))
    assert said == ["Sorry, no one can take your call right now. Please try again later. Goodbye."]


def test_two_workers_racing_for_one_call_back_ring_staff_once(app, twilio, demo, sessions, dialer):
    from outbound.callbacks import call_back

    chose_a_call_back(twilio)
    with sessions() as session:
        escalation_id = session.scalars(select(Escalation.id)).one()
    results = race(app, lambda: call_back(escalation_id))
    assert len(results) == 2 and len(dialer.requests) == 1
    assert sum(r is not None for r in results) == 1          # one rang staff, the other found it claimed


def test_staff_hear_what_the_line_already_did_before_they_take_the_call(twilio, demo, sessions):
    identified(twilio)
    heard(press(twilio, "1"))
    heard(press(twilio, "1"))                       # confirmed
    heard(press(twilio, "2"))
    heard(press(twilio, "1"))                       # a refill of metformin
    verbs = heard(press(twilio, "0"))
    assert whisper_heard(twilio, verbs) == [
        "A call from Jane. Their date of birth matched. They asked for a person.",
        "They confirmed their next appointment.", "They asked for a prescription refill; a task was made for it."]


def test_after_four_wrong_dates_in_a_day_the_number_gets_no_more_tries(twilio, demo, sessions):
    for n, sid in enumerate((call_sid(11), call_sid(12))):
        heard(ring(twilio, JANE, sid=sid))
        heard(press(twilio, None, sid))
        heard(press(twilio, "01011990", sid))
        heard(press(twilio, "02021990", sid))          # two wrong dates: put through, not verified
    heard(ring(twilio, JANE, sid=call_sid(13)))
    verbs = heard(press(twilio, None, call_sid(13)))
    assert spoken(verbs) == ["Please hold while I connect you to our staff."]   # no third chance today
    assert whisper_heard(twilio, verbs, call_sid(13))[0].startswith("A caller from a patient's number.")
