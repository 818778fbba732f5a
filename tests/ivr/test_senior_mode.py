"""Senior mode, per patient or by the clinic's default: slower prompts, longer waits, and each
question said once more before it counts as missed. Measured on the TwiML a call gets and on the
length of the audio espeak-ng renders for it."""

import pytest
from sqlalchemy import select, update

from ivr import calls
from ivr.models import CallEvent, Clinic, Patient, Touch, utcnow
from ivr.prompt_audio import voice_for
from outbound.jobs import place_touch_call
from speech.espeak_engine import EspeakSynthesizer
from tests.support import call_sid, parse_twiml
from tests.twiml_schema import assert_valid

JANE = "+12125550143"


def set_senior(sessions, patient=None, clinic=None):
    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.phone == JANE).values(senior_mode=patient))
        if clinic is not None:
            session.execute(update(Clinic).values(senior_mode=clinic))


def reminder_call(app, twilio, sessions, demo, sid):
    """Place the demo reminder (its job renders the prompts) and answer it; the first TwiML."""
    with sessions.begin() as session:
        touch = session.get(Touch, demo.touch_id)
        touch.status, touch.due_at = "planned", utcnow()
    with app.app_context():
        place_touch_call(demo.touch_id)
    response = twilio.post(f"/twilio/voice/outbound/{demo.touch_id}",
                           {"CallSid": sid, "To": demo.patient_phone, "CallStatus": "in-progress"})
    assert response.status_code == 200
    assert_valid(response.data)
    return parse_twiml(response.data)


def gather_timeout(verbs):
    (gather,) = [v for v in verbs if v.name == "Gather"]
    return int(gather.attrs["timeout"])


def test_a_senior_waits_longer_for_keys_and_hears_prompts_rendered_slower(app, twilio, sessions, demo, synthesizer):
    plain = reminder_call(app, twilio, sessions, demo, call_sid(1))
    plain_rates = {voice.rate for voice, _ in synthesizer.requests}
    synthesizer.requests.clear()
    set_senior(sessions, patient=True)
    senior = reminder_call(app, twilio, sessions, demo, call_sid(2))
    assert (gather_timeout(plain), gather_timeout(senior)) == (6, 10)
    assert plain_rates == {150} and {voice.rate for voice, _ in synthesizer.requests} == {120}


def test_senior_audio_is_longer_than_plain_audio_of_the_same_prompt(app, sessions, demo):
    """Real espeak-ng, at the rates calls use: the same details take noticeably longer to say."""
    espeak = EspeakSynthesizer()
    lengths = {}
    for senior in (False, True):
        set_senior(sessions, patient=senior)
        with sessions() as session:
            _flow, context = calls.touch_context(session, demo.touch_id)
        text = context.catalogue.text("reminder.details", context.values)
        lengths[senior] = espeak.synthesize(voice_for(context.catalogue, context.speech_rate), text).seconds
    assert lengths[True] > lengths[False] * 1.15, lengths


def test_the_clinic_default_applies_to_patients_without_their_own_setting(app, twilio, sessions, demo):
    set_senior(sessions, patient=None, clinic=True)
    assert gather_timeout(reminder_call(app, twilio, sessions, demo, call_sid(3))) == 10
    set_senior(sessions, patient=False, clinic=True)
    assert gather_timeout(reminder_call(app, twilio, sessions, demo, call_sid(4))) == 6


def test_a_patients_own_rate_wins_over_the_senior_rate(sessions, demo):
    set_senior(sessions, patient=True)
    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.phone == JANE).values(speech_rate=140))
    with sessions() as session:
        _flow, context = calls.touch_context(session, demo.touch_id)
    assert (context.senior, context.speech_rate) == (True, 140)


def test_silence_first_repeats_the_question_as_it_was_then_counts(app, twilio, sessions, demo):
    set_senior(sessions, patient=True)
    reminder_call(app, twilio, sessions, demo, call_sid(5))
    for _ in range(2):
        response = twilio.post(twilio.next_url(call_sid(5), "silence", "/twilio/voice/step"), {"CallSid": call_sid(5)})
        assert response.status_code == 200
    with sessions() as session:
        steps = [e.detail for e in session.scalars(select(CallEvent).where(CallEvent.kind == "step")
                                                   .order_by(CallEvent.id))]
    assert [(s["decision"], s["prompts"]) for s in steps[1:]] == [
        ("repeated_for_senior", ["reminder.identify"]),
        ("no_input", ["common.no_input", "reminder.identify"])]


def test_an_inbound_caller_not_yet_identified_gets_the_clinics_default(twilio, sessions, demo):
    set_senior(sessions, patient=None, clinic=True)
    response = twilio.post("/twilio/voice/inbound", {"CallSid": call_sid(7), "From": "+12125550111",
                                                    "To": "+12125550100", "Direction": "inbound"})
    assert gather_timeout(parse_twiml(response.data)) == 3 + 4   # the language offer, made patient


@pytest.mark.parametrize("args,shown", [(["on"], "senior mode on"), (["off"], "senior mode off"),
                                        (["default"], "senior mode the clinic's default (off)")])
def test_the_command_sets_a_patients_senior_mode(runner, sessions, demo, args, shown):
    with sessions() as session:
        patient_id = session.scalars(select(Patient.id).where(Patient.phone == JANE)).one()
    result = runner.invoke(args=["patients", "senior-mode", str(patient_id), *args])
    assert result.exit_code == 0 and result.output.strip() == f"patient {patient_id}: {shown}"
    with sessions() as session:
        assert session.get(Patient, patient_id).senior_mode == {"on": True, "off": False, "default": None}[args[0]]


def test_the_command_refuses_an_unknown_patient_in_one_line(runner, demo):
    result = runner.invoke(args=["patients", "senior-mode", "999", "on"])
    assert result.exit_code == 1 and result.output.strip() == "Error: no patient with id 999"
