"""Actions rendered to TwiML: exact verbs, order, URLs and attributes, and valid by Twilio's rules."""

import pytest

import call_flows
from call_flows import Answered, Ask, Enqueue, Hangup, Keys, Say, Transfer
from call_flows.twiml import TwimlContext, render
from tests.support import parse_twiml
from tests.twiml_schema import assert_valid, problems

TEXT = {"a": "First.", "b": "Second.", "common.apology_transfer": "Sorry, hold on.",
        "common.apology_call_back": "Sorry, we will call back."}
CONTEXT = TwimlContext(text=TEXT.__getitem__, say_language="en-US", step_url="/twilio/voice/step",
              transfer_number="+12125550199")


def test_ask_is_a_gather_with_its_prompts_then_a_redirect_for_silence():
    verbs = parse_twiml(render([Ask(("a", "b"))], CONTEXT))
    assert [v.name for v in verbs] == ["Gather", "Redirect"]
    gather, redirect = verbs
    assert gather.attrs == {"action": "/twilio/voice/step", "method": "POST", "input": "dtmf",
                            "numDigits": "1", "timeout": "6"}
    assert [(c.name, c.attrs, c.text) for c in gather.children] == [
        ("Say", {"language": "en-US"}, "First."), ("Say", {"language": "en-US"}, "Second.")]
    assert (redirect.attrs, redirect.text) == ({"method": "POST"}, "/twilio/voice/step")


def test_a_listening_question_says_then_records_with_keys_ending_it():
    verbs = parse_twiml(render([Ask(("a", "b"), listen=("yes", "no"))], CONTEXT))
    assert [(v.name, v.text) for v in verbs] == [("Say", "First."), ("Say", "Second."), ("Record", ""),
                                                ("Redirect", "/twilio/voice/step")]
    assert verbs[2].attrs == {"action": "/twilio/voice/step", "method": "POST",
                              "finishOnKey": "0123456789*#", "maxLength": "6", "timeout": "3",
                              "playBeep": "false", "trim": "trim-silence"}


def test_senior_mode_waits_longer_at_every_kind_of_question():
    import dataclasses

    from call_flows import TakeMessage

    slow = dataclasses.replace(CONTEXT, slow=True)
    keys = parse_twiml(render([Ask(("a",))], slow))[0]
    spoken = parse_twiml(render([Ask(("a",), listen=("yes",))], slow))[1]
    date = parse_twiml(render([Ask(("a",), listen=("=date",), max_seconds=10)], slow))[1]
    message = parse_twiml(render([TakeMessage()], slow))[0]
    plain = parse_twiml(render([TakeMessage()], CONTEXT))[0]
    assert keys.attrs["timeout"] == "10"
    assert (spoken.attrs["timeout"], spoken.attrs["maxLength"]) == ("5", "10")
    assert (date.attrs["timeout"], date.attrs["maxLength"]) == ("5", "14")
    assert (message.attrs["timeout"], plain.attrs["timeout"], message.attrs["maxLength"]) == ("9", "5", "120")


def test_say_then_hangup():
    verbs = parse_twiml(render([Say("a"), Hangup()], CONTEXT))
    assert [(v.name, v.text) for v in verbs] == [("Say", "First."), ("Hangup", "")]


def test_transfer_dials_only_the_configured_number():
    verbs = parse_twiml(render([Say("a"), Transfer()], CONTEXT))
    assert [(v.name, v.text) for v in verbs] == [("Say", "First."), ("Dial", "")]
    assert [(n.name, n.attrs, n.text) for n in verbs[1].children] == [("Number", {}, "+12125550199")]


def test_transfer_with_a_whisper_reports_to_the_dial_url():
    voice = TwimlContext(TEXT.__getitem__, "en-US", "/s", "+12125550199", dial_url="/twilio/voice/dial",
                  whisper_url=lambda key: f"/twilio/voice/whisper?prompt={key}")
    (dial,) = parse_twiml(render([Transfer(whisper="inbound.whisper")], voice))
    assert (dial.name, dial.attrs) == ("Dial", {"action": "/twilio/voice/dial", "method": "POST"})
    assert [(n.name, n.attrs, n.text) for n in dial.children] == [
        ("Number", {"url": "/twilio/voice/whisper?prompt=inbound.whisper", "method": "POST"},
         "+12125550199")]
    with pytest.raises(ValueError):
        render([Transfer()], TwimlContext(TEXT.__getitem__, "en-US", "/s", transfer_number=None))


def test_enqueue_puts_the_caller_in_their_queue_with_its_wait_and_action_urls():
    voice = TwimlContext(TEXT.__getitem__, "en-US", "/s", "+12125550199", queue_name="ivr-CA1",
                         queue_action_url="/twilio/voice/queue/left?turn=4", queue_wait_url="/twilio/voice/queue/wait")
    (enqueue,) = parse_twiml(render([Enqueue()], voice))
    assert (enqueue.name, enqueue.text, enqueue.attrs) == ("Enqueue", "ivr-CA1", {
        "action": "/twilio/voice/queue/left?turn=4", "method": "POST", "waitUrl": "/twilio/voice/queue/wait",
        "waitUrlMethod": "POST"})
    with pytest.raises(ValueError):
        render([Enqueue()], TwimlContext(TEXT.__getitem__, "en-US", "/s", "+12125550199"))


def test_every_reminder_step_renders_valid_twiml():
    """Walk every node with every key and silence: each document passes the TwiML rules."""
    catalogue_text = lambda key: key  # noqa: E731 - the text does not matter here
    voice = TwimlContext(catalogue_text, "en-US", "/twilio/voice/step", "+12125550199")
    steps = [call_flows.start("reminder", Answered(a)) for a in ("human", "machine_end_beep")]
    for node in ("identify", "menu", "confirm_cancel", "done"):
        for misses in (0, 2):
            for caller_input in [Keys(k) for k in "0123456789*#"] + [call_flows.Silence()]:
                steps.append(call_flows.step("reminder", {"node": node, "misses": misses}, caller_input))
    voice_facts = {"voice_answers": True, "can_transfer": True}
    steps.append(call_flows.start("reminder", Answered("human"), voice_facts))
    for node in ("identify", "menu", "confirm_cancel"):
        for spoken in ("yes", "no", "cancel", "repeat", "emergency", None):
            steps.append(call_flows.step("reminder", {"node": node, "misses": 0},
                                         call_flows.Spoken(spoken), voice_facts))
    steps += [call_flows.failure(True), call_flows.failure(False)]
    steps += [call_flows.start("inbound", Answered(), {"can_transfer": can}) for can in (True, False)]
    steps += [call_flows.step("inbound", {"node": "transferring"}, call_flows.DialResult(s))
              for s in ("completed", "busy")]
    for step in steps:
        assert_valid(render(step.actions, voice))


@pytest.mark.parametrize("xml,problem", [
    ("<Response><Gather><Dial>+1</Dial></Gather></Response>", "<Dial> may not be nested in <Gather>"),
    ('<Response><Say colour="red">Hi</Say></Response>', "<Say> has unknown attribute 'colour'"),
    ("<Response><Hangup/><Say>Hi</Say></Response>", "<Hangup> is followed by verbs that never run"),
    ("<Response><Speak>Hi</Speak></Response>", "<Speak> is not allowed in <Response>"),
    ("<Reply/>", "root element is Reply, not Response"),
])
def test_the_twiml_checker_catches_what_twilio_would_reject(xml, problem):
    assert problem in problems(xml)
