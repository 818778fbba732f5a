"""Appointment reminder: greet, check the right person answered, give details, take the answer.

Nothing about the appointment is spoken until the callee says they are the patient.
Keys: 1 confirm, 2 cancel (asked again before it happens), 3 new time, 9 repeat. When the clinic
takes voice answers (facts["voice_answers"]), each question also listens for words, mapped to
the same choices. No input, a wrong key or words not understood re-ask the same question at most
twice, then the call closes politely. An emergency word stops the flow at any question; "stop"
at any question is read back, and a yes opts the number out of our calls.

The flow remembers the appointment as it was when the call began (facts["appointment"], an
opaque fingerprint of its status, time, place and provider). If someone else changes any of them
during the call (staff cancel or move it, say), the patient is not read details or asked to
decide on an appointment that is no longer what they were called about: once they have said who
they are, they are told it changed and asked to call the clinic.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from call_flows.actions import (Answered, Ask, CallerInput, DialResult, FlowError, Hangup, Keys, OpenTask, OptOut,
                                PlanRetry,
                                Say, SetAppointmentStatus, Spoken, Step, TextPatient, Transfer, missed)

MAX_REPROMPTS = 2

# The question each node asks when it is (re)entered: by keys only, and with voice answers.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "identify": ("reminder.identify",),
    "menu": ("reminder.menu",),
    "confirm_cancel": ("reminder.cancel_check",),
}
VOICE_QUESTIONS: dict[str, tuple[str, ...]] = {
    "identify": ("reminder.identify_voice",),
    "menu": ("reminder.menu_voice",),
    "confirm_cancel": ("reminder.cancel_check_voice",),
    "confirm_stop": ("reminder.stop_check_voice",),
}
# Spoken intents each question accepts, and the key each one stands for.
SPOKEN_KEYS: dict[str, dict[str, str]] = {
    "identify": {"yes": "1", "no": "2"},
    "menu": {"yes": "1", "cancel": "2", "reschedule": "3", "repeat": "9"},
    "confirm_cancel": {"yes": "1", "cancel": "1", "no": "2"},
    "confirm_stop": {"yes": "1", "stop": "1", "no": "2"},
}
# The no-show recovery call (call_flows/no_show.py) is this call with another purpose: after the
# identity check it says the patient was missed and offers a new appointment instead of the menu.
NO_SHOW = "no_show"
NO_SHOW_QUESTIONS = {"menu": ("no_show.offer",)}
NO_SHOW_VOICE_QUESTIONS = {"menu": ("no_show.offer_voice",)}
NO_SHOW_SPOKEN_KEYS = {"menu": {"yes": "1", "no": "2", "repeat": "9"}}
# The refill prompt (call_flows/refill.py) too: after the identity check it names the medication
# that is due and offers the refill (1), the pharmacy (0), or nothing now (2). It is about a
# prescription, not an appointment: the call remembers the prescription as it began instead.
REFILL = "refill"
REFILL_QUESTIONS = {"menu": ("refill.offer",)}
REFILL_VOICE_QUESTIONS = {"menu": ("refill.offer_voice",)}
REFILL_SPOKEN_KEYS = {"menu": {"refill": "1", "yes": "1", "no": "2", "operator": "0", "repeat": "9"}}
_BY_PURPOSE = {NO_SHOW: (NO_SHOW_QUESTIONS, NO_SHOW_VOICE_QUESTIONS, NO_SHOW_SPOKEN_KEYS),
               REFILL: (REFILL_QUESTIONS, REFILL_VOICE_QUESTIONS, REFILL_SPOKEN_KEYS)}


def _subject(purpose: str | None) -> str:
    """What the call is about, as its facts and state name it: the appointment or the prescription."""
    return "prescription" if purpose == REFILL else "appointment"


def _spoken_keys(node: str, purpose: str | None) -> dict[str, str]:
    """The intents a question accepts and the key each stands for ({} for none)."""
    own = _BY_PURPOSE.get(purpose or "", ({}, {}, {}))[2]
    return own.get(node) or SPOKEN_KEYS.get(node, {})


def listening(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The intents a spoken answer to the current question may carry (stop: at every one), then
    the digits of its keys: saying "one" is pressing 1."""
    keys = _spoken_keys(state.get("node"), state.get("purpose"))
    if not keys:
        return ()
    return tuple(dict.fromkeys([*keys, "stop", *sorted(set(keys.values()))]))


def _spoken_key(node: str, intent: str | None, purpose: str | None = None) -> str | None:
    """The key a spoken intent stands for at a question: its word's key, or the digit said."""
    keys = _spoken_keys(node, purpose)
    return keys.get(intent or "") or (intent if intent in keys.values() else None)


def _question(node: str, facts: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(prompts, listen) for a node: voice wording and intents only when voice answers are on."""
    questions, voice_questions, _ = _BY_PURPOSE.get(facts.get("purpose") or "", ({}, {}, {}))
    if facts.get("voice_answers"):
        prompts = voice_questions.get(node) or VOICE_QUESTIONS[node]
        return prompts, listening({"node": node, "purpose": facts.get("purpose")})
    return questions.get(node) or QUESTIONS[node], ()


def start(answered: Answered, facts: Mapping[str, Any] | None = None) -> Step:
    """First words of the call: a voicemail without PHI, or the greeting and identity question."""
    facts = facts or {}
    if answered.is_machine:
        return _finish("voicemail", Say("reminder.voicemail"), decision="left_voicemail")
    prompts, listen = _question("identify", facts)
    state: dict[str, Any] = {"node": "identify", "misses": 0}
    subject = _subject(facts.get("purpose"))
    if facts.get(subject) is not None:
        state[subject] = facts[subject]
    if facts.get("purpose") in _BY_PURPOSE:
        state["purpose"] = facts["purpose"]
    return Step(actions=(Ask(("reminder.greeting", *prompts), listen=listen),), state=state)


def advance(state: Mapping[str, Any], caller_input: CallerInput,
            facts: Mapping[str, Any] | None = None) -> Step:
    """Take the caller's answer to the question asked in state['node']."""
    facts = {**(facts or {}), "purpose": state.get("purpose")}
    return _carry(state, _answer(state, caller_input, facts))


def _answer(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    node = state.get("node")
    if node == "done":
        return Step(actions=(Hangup(),), state=state, decision="input_after_end")
    if node == "pharmacy":
        return _pharmacy_result(caller_input, facts)
    handler = _HANDLERS.get(node)
    if handler is None:
        raise FlowError(f"reminder flow has no node {node!r}")
    if isinstance(caller_input, Spoken) and caller_input.intent == "emergency":
        return _emergency(facts)
    if isinstance(caller_input, Spoken) and caller_input.intent == "stop" and node != "confirm_stop":
        # A consequential answer is read back before it takes effect (recognisers mishear).
        return Step(actions=(Ask(VOICE_QUESTIONS["confirm_stop"], listen=listening({"node": "confirm_stop"})),),
                    state={"node": "confirm_stop", "misses": 0, "back_to": node}, decision="stop_requested")
    if node == "confirm_stop":
        return _confirm_stop(state, caller_input, facts)
    key = None
    if isinstance(caller_input, Keys):
        key = caller_input.digits[:1]
    elif isinstance(caller_input, Spoken):
        key = _spoken_key(node, caller_input.intent, facts.get("purpose"))
    # Only a question about the appointment is stopped by a change to it; before identity nothing
    # about the appointment may be said, so there the change waits for the patient's "1".
    if _changed_meanwhile(state, facts) and (node in ("menu", "confirm_cancel") or key == "1"):
        if facts.get("purpose") == REFILL:
            return _finish("prescription_changed", Say("refill.changed_meanwhile"),
                           decision="prescription_changed_meanwhile")
        return _finish("appointment_changed", Say("reminder.changed_meanwhile"),
                       decision="appointment_changed_meanwhile")
    step = handler(key, facts) if key else None
    return step if step is not None else _miss(state, caller_input, facts)


def _changed_meanwhile(state: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether the appointment (or, for a refill, the prescription) is no longer what it was when
    the call began (calls that began before the flow remembered it are not checked)."""
    subject = _subject(facts.get("purpose"))
    began = state.get(subject)
    return began is not None and facts.get(subject) != began


def _carry(state: Mapping[str, Any], step: Step) -> Step:
    """The step with what the call remembers for its whole length kept in its state: the
    appointment as called about, and the call's purpose."""
    kept = {key: state[key] for key in ("appointment", "prescription", "purpose") if key in state}
    return replace(step, state={**step.state, **kept}) if kept else step


def _details(facts) -> tuple[str, ...]:
    """What is said of the appointment (or the prescription) once the patient has said who they are."""
    return {NO_SHOW: ("no_show.missed",), REFILL: ("refill.due",)}.get(facts.get("purpose"), ("reminder.details",))


def _identify(key: str, facts) -> Step | None:
    if key == "1":
        return _ask("menu", facts, decision="identity_confirmed", before=_details(facts))
    if key == "2":
        # "We will try again another time": the clinic rings again tomorrow when it allows a
        # retry (once), else a person is asked to.
        follow_up = PlanRetry() if facts.get("can_retry") else OpenTask("wrong_person")
        return _finish("wrong_person", Say("reminder.wrong_person"), decision="not_the_patient",
                       effects=(follow_up,))
    return None


def _menu(key: str, facts) -> Step | None:
    if facts.get("purpose") == NO_SHOW:
        return _no_show_offer(key, facts)
    if facts.get("purpose") == REFILL:
        return _refill_offer(key, facts)
    if key == "1":
        return _finish("confirmed", Say("reminder.confirmed"), decision="confirm",
                       effects=(SetAppointmentStatus("confirmed"),))
    if key == "2":
        return _ask("confirm_cancel", facts, decision="cancel_requested")
    if key == "3":
        return _finish("reschedule_requested", Say("reminder.reschedule_noted"), decision="reschedule",
                       effects=(SetAppointmentStatus("reschedule_requested"),
                                OpenTask("reschedule_request", within_business_days=1)))
    if key == "9":
        return _ask("menu", facts, decision="repeat", before=("reminder.details",))
    return None


def _no_show_offer(key: str, facts) -> Step | None:
    """After a missed visit: 1 asks for a new appointment (a task: someone calls within a business
    day), 2 declines, 9 repeats."""
    if key == "1":
        return _finish("rebook_requested", Say("no_show.rebook_noted"), decision="rebook",
                       effects=(OpenTask("rebook_request", within_business_days=1),))
    if key == "2":
        return _finish("rebook_declined", Say("no_show.declined"), decision="rebook_declined")
    if key == "9":
        return _ask("menu", facts, decision="repeat", before=_details(facts))
    return None


def _refill_offer(key: str, facts) -> Step | None:
    """The medication is due: 1 asks for the refill (a task for the pharmacy team, confirmed by
    text), 0 puts the patient through to the pharmacy (or says its number when nobody can take
    the call), 2 says not now, 9 repeats."""
    if key == "1":
        return _finish("refill_requested", Say("refill.noted"), decision="refill",
                       effects=(OpenTask("refill_request", within_business_days=1), TextPatient("sms.refill_noted")))
    if key == "0":
        if facts.get("can_reach_pharmacy"):
            return Step(actions=(Say("refill.connecting"), Transfer(pharmacy=True)),
                        state={"node": "pharmacy", "misses": 0}, decision="to_pharmacy")
        return _finish("pharmacy_number_given", Say("refill.call_pharmacy"), decision="to_pharmacy")
    if key == "2":
        return _finish("refill_declined", Say("refill.declined"), decision="refill_declined")
    if key == "9":
        return _ask("menu", facts, decision="repeat", before=_details(facts))
    return None


def _pharmacy_result(caller_input: CallerInput, facts) -> Step:
    """How the transfer to the pharmacy ended: taken, the call is theirs; not taken (busy, no
    answer), the patient is back at the offer (a refill by key, or try again)."""
    if isinstance(caller_input, DialResult) and caller_input.status != "completed":
        return _ask("menu", facts, decision="pharmacy_unanswered", before=("refill.pharmacy_unanswered",))
    return _finish("to_pharmacy", decision="pharmacy_took_the_call")


def _confirm_cancel(key: str, facts) -> Step | None:
    if key == "1":
        return _finish("cancelled", Say("reminder.cancelled"), decision="cancel_confirmed",
                       effects=(SetAppointmentStatus("cancelled"),))
    if key == "2":
        return _ask("menu", facts, decision="cancel_withdrawn", before=("reminder.kept",))
    return None


def _confirm_stop(state: Mapping[str, Any], caller_input: CallerInput, facts) -> Step:
    """Yes opts the number out; no goes back to the question the caller was on."""
    key = caller_input.digits[:1] if isinstance(caller_input, Keys) else (
        _spoken_key("confirm_stop", caller_input.intent) if isinstance(caller_input, Spoken) else None)
    if key == "1":
        return _finish("opted_out", Say("reminder.opted_out"), decision="opt_out_confirmed",
                       effects=(OptOut("voice"),))
    if key == "2":
        back = state.get("back_to", "identify")
        return _ask(back, facts, decision="opt_out_withdrawn")
    return _miss(state, caller_input, facts)


_HANDLERS = {"identify": _identify, "menu": _menu, "confirm_cancel": _confirm_cancel,
             "confirm_stop": _confirm_stop}


def _ask(node: str, facts, decision: str, before: tuple[str, ...] = ()) -> Step:
    """Move to node and ask its question; a valid answer resets the miss count."""
    prompts, listen = _question(node, facts)
    return Step(actions=(Ask((*before, *prompts), listen=listen),), state={"node": node, "misses": 0},
                decision=decision)


def _finish(outcome: str, *actions, decision: str, effects=()) -> Step:
    return Step(actions=(*actions, Hangup()), state={"node": "done", "misses": 0},
                effects=effects, decision=decision, outcome=outcome)


def _emergency(facts) -> Step:
    """Stop everything: tell the caller to dial the emergency number, and offer staff at once."""
    if facts.get("can_transfer"):
        actions = (Say("common.emergency"), Say("common.emergency_transfer"), Transfer())
    else:
        actions = (Say("common.emergency"), Hangup())
    return Step(actions=actions, state={"node": "done", "misses": 0}, decision="emergency",
                outcome="emergency")


def _miss(state: Mapping[str, Any], caller_input: CallerInput, facts) -> Step:
    """Re-ask after silence, a wrong key or words not understood, or close once re-prompts run out.
    In senior mode a question is first said again as it was, before anything counts as a miss."""
    decision, sorry = missed(caller_input)
    node = state["node"]
    if node == "confirm_stop":  # only reached by voice, so it always listens
        prompts, listen = VOICE_QUESTIONS[node], listening(state)
    else:
        prompts, listen = _question(node, facts)
    if facts.get("senior") and not state.get("repeated"):
        return Step(actions=(Ask(prompts, listen=listen),), state={**state, "repeated": True},
                    decision="repeated_for_senior")
    misses = int(state.get("misses", 0)) + 1
    if misses > MAX_REPROMPTS:
        return _finish("no_response", Say("reminder.no_response"), decision=decision)
    return Step(actions=(Ask((sorry, *prompts), listen=listen),),
                state={**state, "node": node, "misses": misses}, decision=decision)
