"""The inbound line: a patient calls the clinic. Built for a senior who calls without help.

Welcome, what to do in an emergency, and each other language offered in its own words ("para
español, oprima 2"; silence keeps the language). A caller whose number belongs to patients of the
clinic enters their date of birth (MMDDYYYY by keys, or said aloud when the clinic takes voice
answers); it must match exactly one of them, and nothing about any patient is said before it does.
The date also tells apart the people of a household who share a number, so no name is said to
find out who is calling. Then at most three choices: the next appointment (hear it, confirm or
cancel it), a prescription refill (a task for staff), or a person. 0, or saying "person" (the
operator intent), reaches a person at any question; 9 or "repeat" says the question again; an
emergency phrase is acted on at any spoken answer; two failed tries at any question lead to a
person, never a hang-up.

Facts the shell gives each turn (computed from the record, never kept in the state):
- language: the language the call is in; languages: {key: language} the caller may choose;
- callers: [{"patient": id, "dob": "MMDDYYYY"}] of the caller's number, until identified;
  number_known: whether any patient has the number (with or without a date of birth on file);
- appointment: a fingerprint of the identified patient's next appointment, or None;
- prescriptions: ids of the identified patient's active prescriptions, in the order they are read;
- can_transfer, voice_answers, can_hear_dates (this machine reads spoken dates in the call's
  language), can_call_back (we know a number to call the caller back on);
- open: whether the line is staffed now (False only for a clinic with opening hours, outside
  them), and opens_known: whether the next opening is known (it is said as the `opens` value);
- staff_lines: how many staff numbers may be tried in turn (the staff phone, then other lines);
- queue: a caller handed to a person waits in a queue (hearing their place and the expected
  wait, free to press 1 for a call back) while the shell rings the staff lines; otherwise, and
  always for an emergency, the call itself rings them in turn (Transfer);
- dob_locked: the caller's number gave too many wrong dates of birth lately (someone guessing):
  no more tries by phone today, a person checks who they are.

After hours the caller hears when the clinic opens again and may leave a message for staff (a
voicemail_review task with the recording); nobody is asked who they are.

Every caller is asked for a date of birth, whether or not their number is a patient's, and a
date that matches no one is answered the same way: the line never tells a stranger (who can fake
a caller ID) whether a number belongs to a patient. Staff, who are trusted, are told.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from call_flows.actions import (Answered, Ask, CallerInput, DialResult, Enqueue, Escalate, EscalationEnded,
                                FlowError, Hangup, Identify, Keys, LeftQueue, OpenTask, PlanCallBack, Recorded, RememberLanguage, Say,
                                SetAppointmentStatus, Spoken, Step, TakeMessage, Transfer, in_language,
                                missed)

MAX_TRIES = 2             # a question asked twice without an answer goes to a person
DOB_DIGITS = 8            # MMDDYYYY
MAX_PRESCRIPTIONS = 3     # read one by one; more than that is a person's job
LANGUAGE_TIMEOUT = 3      # the language offer is skipped by waiting, so it must not wait long
DOB_TIMEOUT = 10          # eight keys take a senior a while
DOB_SPOKEN_SECONDS = 10   # "April the twelfth, nineteen fifty", said slowly
SPOKEN_DATE = "=date"     # listen for a spoken date rather than for intents

QUESTIONS: dict[str, tuple[str, ...]] = {
    "dob": ("inbound.dob",),
    "menu": ("inbound.menu",),
    "appointment": ("reminder.details", "inbound.appointment_menu"),
    "confirm_cancel": ("reminder.cancel_check",),
}
VOICE_QUESTIONS: dict[str, tuple[str, ...]] = {
    "dob": ("inbound.dob_voice",),
    "menu": ("inbound.menu_voice",),
    "appointment": ("reminder.details", "inbound.appointment_menu_voice"),
    "confirm_cancel": ("reminder.cancel_check_voice",),
}
# Spoken intents each question accepts, and the key each one stands for.
SPOKEN_KEYS: dict[str, dict[str, str]] = {
    "menu": {"appointment": "1", "refill": "2", "operator": "3", "repeat": "9"},
    "appointment": {"yes": "1", "cancel": "2", "repeat": "9"},
    "confirm_cancel": {"yes": "1", "cancel": "1", "no": "2"},
    "refill": {"repeat": "9"},
}
# Whisper prompts staff hear before the caller is put through, by why the caller is coming.
WHISPERS = {"asked": "inbound.whisper_asked", "stuck": "inbound.whisper_stuck",
            "not_verified": "inbound.whisper_not_verified", "refill": "inbound.whisper_refill",
            "emergency": "inbound.whisper_emergency", "unknown": "inbound.whisper"}
# Decisions after which the caller got what they called for: hanging up then is no missed call.
SERVED = frozenset({"confirm", "cancel_confirmed", "cancel_withdrawn", "refill_noted"})
# What the line did that staff should know before they say hello, by the decision that did it
# (the whisper says each: "inbound.did_confirm"...).
DONE_FOR_STAFF = {"confirm": "confirm", "cancel_confirmed": "cancel", "refill_noted": "refill"}
# Nodes whose answer is a message for staff: a recording kept, not recognised.
MESSAGE_NODES = frozenset({"message"})
# Nodes whose answers are personal data (a date of birth): the audit trail keeps no digits.
SENSITIVE = frozenset({"dob"})


def listening(state: Mapping[str, Any]) -> tuple[str, ...]:
    """What a spoken answer to the current question may carry: a date for the date of birth,
    else intents (person at every question) and the digits of the question's keys."""
    node = state.get("node")
    if node == "dob":
        return (SPOKEN_DATE,)
    if node not in SPOKEN_KEYS:
        return ()
    keys = SPOKEN_KEYS[node]
    if node == "refill":
        keys = {**keys, **{str(n): str(n) for n in range(1, len(state.get("choices", ())) + 1)}}
    return tuple(dict.fromkeys([*keys, "operator", *sorted(set(keys.values()))]))


def start(answered: Answered, facts: Mapping[str, Any]) -> Step:
    """Welcome and the emergency instruction; then other languages, each in its own words."""
    offers = tuple(in_language("inbound.language_offer", language)
                   for key, language in sorted(facts.get("languages", {}).items())
                   if language != facts.get("language"))
    opening = ("inbound.welcome", "common.emergency")
    if offers:
        return Step(actions=(Ask((*opening, *offers), timeout=LANGUAGE_TIMEOUT),),
                    state={"node": "language", "misses": 0}, decision="welcome")
    return _after_language({}, facts, before=opening, decision="welcome")


def advance(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """Take the caller's answer to the question asked in state['node']."""
    step = _answer(state, caller_input, facts)
    # What the call keeps for its whole length: its language and who was identified.
    kept = {k: state[k] for k in ("language", "patient", "served", "did") if k in state and k not in step.state}
    if step.decision in SERVED:
        kept["served"] = True
    if step.decision in DONE_FOR_STAFF:  # what staff hear the line already did, each thing once
        kept["did"] = list(dict.fromkeys([*state.get("did", ()), DONE_FOR_STAFF[step.decision]]))
    return Step(actions=step.actions, state={**step.state, **kept}, effects=step.effects,
                decision=step.decision, outcome=step.outcome)


def _answer(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    node = state.get("node")
    if node == "done":
        return Step(actions=(Hangup(),), state=state, decision="input_after_end")
    if node == "transferring":
        return _transfer_result(state, caller_input, facts)
    if node == "queued":
        return _left_queue(state, caller_input, facts)
    if node == "language":
        return _language(state, caller_input, facts)
    if node == "message":
        return _message_left(state, caller_input, facts)
    if node == "no_one_free":
        return _no_one_free(state, caller_input, facts)
    handler = _HANDLERS.get(node)
    if handler is None:
        raise FlowError(f"inbound flow has no node {node!r}")
    if isinstance(caller_input, Spoken) and caller_input.intent == "emergency":
        return _emergency(state, facts)
    key = None
    if isinstance(caller_input, Keys):
        key = caller_input.digits
    elif isinstance(caller_input, Spoken):
        key = _spoken_key(state, caller_input)
    if (node == "dob" and isinstance(caller_input, Keys) and caller_input.digits != "0"
            and _dob_by_voice(state, facts)):
        # The spoken question offers the keypad by a key of its own (a recording stops at the
        # first key, so a date typed into it would lose seven digits): any key but 0 asks for
        # all eight by keys.
        return _ask_dob({**state, "keypad": True}, facts, decision="dob_by_keys")
    if key == "0" or (isinstance(caller_input, Spoken) and caller_input.intent == "operator"):
        return _person(state, facts, "asked" if state.get("patient") else _unverified(facts),
                       decision="person_requested")
    if node in ("appointment", "confirm_cancel") and _changed_meanwhile(state, facts):
        # Staff changed the appointment the caller is deciding on: no answer is taken on it.
        return _ask("menu", state, facts, decision="appointment_changed_meanwhile",
                    before=("inbound.appointment_changed",))
    step = handler(state, key, facts) if key else None
    return step if step is not None else _miss(state, caller_input, facts)


def _spoken_key(state: Mapping[str, Any], spoken: Spoken) -> str | None:
    """The key a spoken answer stands for: a date of birth as its eight digits, an intent's key,
    or a digit said aloud."""
    node = state["node"]
    if node == "dob":
        if spoken.intent != "date" or not spoken.value:
            return None
        day = dt.date.fromisoformat(spoken.value)
        return f"{day.month:02d}{day.day:02d}{day.year:04d}"
    keys = SPOKEN_KEYS.get(node, {})
    intent = spoken.intent or ""
    return keys.get(intent) or (intent if intent.isdigit() else None)


def _language(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """A language's key switches to it and remembers it for the caller's number; anything else
    (waiting, most likely) carries on in the language the call is in."""
    if isinstance(caller_input, Keys) and caller_input.digits[:1] == "0" and facts.get("open") is not False:
        return _person(state, facts, _unverified(facts), decision="person_requested")
    chosen = facts.get("languages", {}).get(caller_input.digits[:1]) if isinstance(caller_input, Keys) else None
    if chosen and chosen != facts.get("language"):
        return _after_language({"language": chosen}, facts, decision="language_chosen",
                               effects=(RememberLanguage(chosen),))
    return _after_language({}, facts, decision="language_kept")


def _after_language(state: dict, facts: Mapping[str, Any], *, decision: str,
                    before: tuple[str, ...] = (), effects: tuple = ()) -> Step:
    """Ask every caller for their date of birth; after hours, offer to take a message instead."""
    if facts.get("dob_locked") and facts.get("open") is not False:
        step = _person(state, facts, _unverified(facts), decision="identity_locked", before=before)
        return Step(actions=step.actions, state=step.state, effects=(*effects, *step.effects),
                    decision=step.decision, outcome=step.outcome)
    if facts.get("open") is False:
        closed = "inbound.closed_until" if facts.get("opens_known") else "inbound.closed"
        return Step(actions=(*(Say(k) for k in (*before, closed, "inbound.leave_message")), TakeMessage()),
                    state={**state, "node": "message", "misses": 0}, effects=effects, decision="closed")
    return _ask_dob({**state, "node": "dob", "misses": 0}, facts, before=before, decision=decision,
                    effects=effects)


def _unverified(facts: Mapping[str, Any]) -> str:
    """Why a caller not identified goes to a person, for staff: their number is a patient's
    (whose date did not match, or who has none on file), or a number we do not know."""
    return "not_verified" if facts.get("number_known") or facts.get("callers") else "unknown"


def _no_one_free(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """1: keep their place and hang up for a call back when someone is free; 2: a message for
    staff; anything else (waiting, most likely): a call back by a person within a business day."""
    done = {**state, "node": "done"}
    key = caller_input.digits[:1] if isinstance(caller_input, Keys) else None
    if key == "1":
        return Step(actions=(Say("inbound.call_back_planned"), Hangup()), state=done, decision="call_back_chosen",
                    effects=(PlanCallBack(), EscalationEnded("call_back")), outcome="call_back_planned")
    if key == "2":
        return Step(actions=(Say("inbound.leave_message"), TakeMessage()), state={**state, "node": "message"},
                    decision="message_chosen")
    return Step(actions=(Say("inbound.nobody_available_call_back"), Hangup()), state=done,
                effects=(OpenTask("call_back", within_business_days=1), EscalationEnded("call_back")),
                decision="no_choice", outcome="call_back_promised")


def _message_left(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """A message is a task for staff with the recording; no message, a call back when we can."""
    done = {**_without_node(state), "node": "done"}
    # After nobody took the call, the message ends its escalation.
    ended = (EscalationEnded("voicemail"),) if state.get("reason") else ()
    if isinstance(caller_input, Recorded):
        # A call back is promised only to a number we may ring (or a patient we know).
        thanks = "inbound.message_taken" if facts.get("can_call_back") or state.get("patient") \
            else "inbound.message_taken_no_number"
        return Step(actions=(Say(thanks), Hangup()), state=done, decision="message_left",
                    effects=(OpenTask("voicemail_review", within_business_days=1, voicemail=caller_input.message),
                             *ended), outcome="voicemail")
    if facts.get("can_call_back") or state.get("patient"):
        return Step(actions=(Say("inbound.no_message_call_back"), Hangup()), state=done, decision="no_message",
                    effects=(OpenTask("call_back", within_business_days=1),
                             *((EscalationEnded("call_back"),) if ended else ())), outcome="call_back_promised")
    return Step(actions=(Say("inbound.no_message"), Hangup()), state=done, decision="no_message",
                outcome="no_message")


def _dob_by_voice(state: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether the date of birth is asked for aloud (a recording), not by keys."""
    return bool(facts.get("voice_answers")) and bool(facts.get("can_hear_dates")) and not state.get("keypad")


def _ask_dob(state: Mapping[str, Any], facts: Mapping[str, Any], *, decision: str, before: tuple[str, ...] = (),
             effects: tuple = ()) -> Step:
    """Ask for the date of birth: by keys, or said aloud when the clinic takes voice answers (a
    caller who presses a key instead is then asked for all eight by keys)."""
    if _dob_by_voice(state, facts):
        prompts, listen = VOICE_QUESTIONS["dob"], (SPOKEN_DATE,)
    else:
        prompts, listen = QUESTIONS["dob"], ()
    return Step(actions=(Ask((*before, *prompts, "inbound.person_anytime"), num_digits=DOB_DIGITS,
                             timeout=DOB_TIMEOUT, listen=listen,
                             max_seconds=DOB_SPOKEN_SECONDS if listen else None),),
                state=dict(state), effects=effects, decision=decision)


def _dob(state: Mapping[str, Any], key: str, facts: Mapping[str, Any]) -> Step | None:
    """Exactly one patient of the number born that day: identified. Two with the same date (twins
    on one line) cannot be told apart: a person helps. No one: asked again, then a person."""
    if len(key) != DOB_DIGITS:
        return None
    matches = [c["patient"] for c in facts.get("callers", ()) if c.get("dob") == key]
    if len(matches) == 1:
        return _ask("menu", {**state, "patient": matches[0]}, facts, decision="identity_confirmed",
                    before=("inbound.hello",), effects=(Identify(matches[0]),))
    if len(matches) > 1:
        return _person(state, facts, _unverified(facts), decision="identity_ambiguous")
    misses = int(state.get("misses", 0)) + 1
    if misses >= MAX_TRIES:
        return _person(state, facts, _unverified(facts), decision="identity_not_matched",
                       before=("inbound.dob_mismatch",))
    return _ask_dob({**state, "misses": misses}, facts, before=("inbound.dob_mismatch",),
                    decision="identity_not_matched")


def _menu(state: Mapping[str, Any], key: str, facts: Mapping[str, Any]) -> Step | None:
    key = key[:1]
    if key == "1":
        if facts.get("appointment") is None:
            return _ask("menu", state, facts, decision="no_appointment", before=("inbound.no_appointment",))
        return _ask("appointment", {**state, "appointment": facts["appointment"]}, facts,
                    decision="appointment_heard")
    if key == "2":
        return _refill_choices(state, facts)
    if key == "3":
        return _person(state, facts, "asked", decision="person_requested")
    if key == "9":
        return _ask("menu", state, facts, decision="repeat")
    return None


def _appointment(state: Mapping[str, Any], key: str, facts: Mapping[str, Any]) -> Step | None:
    key = key[:1]
    if key == "1":
        return _ask("menu", state, facts, decision="confirm", before=("inbound.confirmed", "inbound.anything_else"),
                    effects=(SetAppointmentStatus("confirmed"),))
    if key == "2":
        return _ask("confirm_cancel", state, facts, decision="cancel_requested")
    if key == "9":
        return _ask("appointment", state, facts, decision="repeat")
    return None


def _confirm_cancel(state: Mapping[str, Any], key: str, facts: Mapping[str, Any]) -> Step | None:
    key = key[:1]
    if key == "1":
        return _ask("menu", state, facts, decision="cancel_confirmed",
                    before=("inbound.cancelled", "inbound.anything_else"),
                    effects=(SetAppointmentStatus("cancelled"),))
    if key == "2":
        return _ask("menu", state, facts, decision="cancel_withdrawn",
                    before=("reminder.kept", "inbound.anything_else"))
    return None


def _changed_meanwhile(state: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether the appointment the caller heard is no longer what it was (staff changed it)."""
    return state.get("appointment") is not None and facts.get("appointment") != state["appointment"]


def _refill_choices(state: Mapping[str, Any], facts: Mapping[str, Any]) -> Step:
    """Each active prescription read with its key, one per sentence; none, or too many to read,
    is said plainly (and too many goes to a person)."""
    prescriptions = list(facts.get("prescriptions", ()))
    if not prescriptions:
        return _ask("menu", state, facts, decision="no_prescriptions", before=("inbound.no_prescriptions",))
    if len(prescriptions) > MAX_PRESCRIPTIONS:
        return _person(state, facts, "refill", decision="too_many_prescriptions")
    prompts = tuple(f"inbound.refill_choice_{n}" for n in range(1, len(prescriptions) + 1))
    choices = {"node": "refill", "misses": 0, "choices": prescriptions}
    listen = listening(choices) if facts.get("voice_answers") else ()
    return Step(actions=(Ask(("inbound.refill_which", *prompts, "inbound.repeat_or_person"), listen=listen),),
                state={**_without_node(state), **choices}, decision="refill_requested")


def _refill(state: Mapping[str, Any], key: str, facts: Mapping[str, Any]) -> Step | None:
    prescriptions = list(facts.get("prescriptions", ()))
    key = key[:1]
    if key == "9":
        return _refill_choices(state, facts)
    read = list(state.get("choices", ()))    # the prescriptions as they were read, in that order
    if key.isdigit() and 1 <= int(key) <= len(read):
        chosen = read[int(key) - 1]
        if chosen not in prescriptions:  # stopped by staff since it was read: read them again
            return _refill_choices(state, facts)
        return _ask("menu", state, facts, decision="refill_noted",
                    before=("inbound.refill_noted", "inbound.anything_else"),
                    effects=(OpenTask("refill_request", within_business_days=1, prescription_id=chosen),))
    return None


_HANDLERS = {"dob": _dob, "menu": _menu, "appointment": _appointment, "confirm_cancel": _confirm_cancel,
             "refill": _refill}


def _question(node: str, facts: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(prompts, listen) for a node: voice wording and listening only when voice answers are on."""
    if facts.get("voice_answers"):
        return VOICE_QUESTIONS[node], listening({"node": node})
    return QUESTIONS[node], ()


def _without_node(state: Mapping[str, Any]) -> dict:
    return {k: v for k, v in state.items()
            if k not in ("node", "misses", "choices", "appointment", "keypad", "repeated", "line")}


def _ask(node: str, state: Mapping[str, Any], facts: Mapping[str, Any], *, decision: str,
         before: tuple[str, ...] = (), effects: tuple = ()) -> Step:
    """Move to node and ask its question; a valid answer resets the miss count."""
    prompts, listen = _question(node, facts)
    kept = _without_node(state)
    if node in ("appointment", "confirm_cancel") and "appointment" in state:
        kept["appointment"] = state["appointment"]
    return Step(actions=(Ask((*before, *prompts), listen=listen),), state={**kept, "node": node, "misses": 0},
                effects=effects, decision=decision)


def _person(state: Mapping[str, Any], facts: Mapping[str, Any], reason: str, *, decision: str,
            before: tuple[str, ...] = ()) -> Step:
    """Put the caller through to staff, who first hear why; without a staff line, a call back
    (a task) when we have a number to call, else when to call again."""
    kept = _without_node(state)
    if facts.get("can_transfer"):
        # The caller waits in the queue, or their own call rings the first staff line.
        queued = bool(facts.get("queue"))
        return Step(actions=(*(Say(k) for k in before), Say("inbound.connecting"),
                             Enqueue() if queued else Transfer(whisper=WHISPERS[reason])),
                    state={**kept, "node": "queued" if queued else "transferring", "reason": reason},
                    decision=decision, effects=(Escalate(reason),))
    if kept.get("patient") or facts.get("can_call_back"):
        return Step(actions=(*(Say(k) for k in before), Say("inbound.call_back"), Hangup()),
                    state={**kept, "node": "done", "reason": reason}, decision=decision,
                    effects=(Escalate(reason), OpenTask("call_back", within_business_days=1),
                             EscalationEnded("call_back")), outcome="call_back_promised")
    return Step(actions=(*(Say(k) for k in before), Say("inbound.no_staff"), Hangup()),
                state={**kept, "node": "done", "reason": reason}, decision=decision, outcome="not_transferred",
                effects=(Escalate(reason), EscalationEnded("unanswered")))


def _left_queue(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """How the caller left the queue: taken by staff; chose a call back; nobody took them in
    time (a call back or a message, as after an unanswered transfer); or hung up."""
    if not isinstance(caller_input, LeftQueue):
        return Step(actions=(Hangup(),), state=dict(state), decision="input_after_end")
    done = {**state, "node": "done"}
    if caller_input.result == "answered":
        return Step(actions=(Hangup(),), state=done, decision="staff_answered", outcome="transferred",
                    effects=(EscalationEnded("answered"),))
    if caller_input.result == "call_back":
        return Step(actions=(Say("inbound.call_back_planned"), Hangup()), state=done, decision="call_back_chosen",
                    effects=(PlanCallBack(), EscalationEnded("call_back")), outcome="call_back_planned")
    if caller_input.result == "hangup":
        # The call has ended; its missed-call text follows from its status, as any hang-up's.
        return Step(actions=(Hangup(),), state=done, decision="left_queue",
                    effects=(EscalationEnded("abandoned"),))
    return _nobody_took_it(state, facts, decision="queue_unanswered")


def _transfer_result(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """Staff answered: done. Nobody did: a call back when we can make one, else when to call."""
    if not isinstance(caller_input, DialResult):
        return Step(actions=(Hangup(),), state=dict(state), decision="input_after_end")
    if caller_input.status in ("completed", "answered"):
        return Step(actions=(Hangup(),), state={**state, "node": "done"}, decision="staff_answered",
                    outcome="transferred", effects=(EscalationEnded("answered", int(state.get("line", 0))),))
    decision = f"staff_{caller_input.status.replace('-', '_')}"
    line = int(state.get("line", 0)) + 1
    if line < int(facts.get("staff_lines", 1)) and state.get("reason") in WHISPERS:
        # Nobody took it there (or staff passed it): the next line, in order.
        return Step(actions=(Say("inbound.still_trying"), Transfer(whisper=WHISPERS[state["reason"]], line=line)),
                    state={**state, "line": line}, decision=decision)
    return _nobody_took_it(state, facts, decision=decision)


def _nobody_took_it(state: Mapping[str, Any], facts: Mapping[str, Any], *, decision: str) -> Step:
    """No staff line took the caller: a call back or a message when we can call them, else
    when to call again."""
    if state.get("patient") or facts.get("can_call_back"):
        # Virtual hold: a call back as soon as someone is free, or a message.
        return Step(actions=(Ask(("inbound.offer_call_back",)),), state={**state, "node": "no_one_free", "misses": 0},
                    decision=decision)
    return Step(actions=(Say("inbound.nobody_available"), Hangup()), state={**state, "node": "done"},
                decision=decision, outcome="transfer_unanswered", effects=(EscalationEnded("unanswered"),))


def _emergency(state: Mapping[str, Any], facts: Mapping[str, Any]) -> Step:
    """Tell the caller to dial the emergency number, and put them through to staff at once."""
    if facts.get("can_transfer"):
        # Never the queue: the call itself rings staff at once, needing no worker, offering no
        # call back, dropped by no longest wait.
        return Step(actions=(Say("common.emergency"), Say("common.emergency_transfer"),
                             Transfer(whisper=WHISPERS["emergency"])),
                    state={**_without_node(state), "node": "transferring", "reason": "emergency"},
                    decision="emergency", effects=(Escalate("emergency"),))
    return Step(actions=(Say("common.emergency"), Hangup()), state={**_without_node(state), "node": "done"},
                decision="emergency", outcome="emergency")


def _miss(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any]) -> Step:
    """Silence, a wrong key or words not understood: asked again once, then a person. In senior
    mode a question is first said again as it was, before anything counts as a miss."""
    decision, sorry = missed(caller_input)
    if facts.get("senior") and not state.get("repeated"):
        return _ask_again({**state, "repeated": True}, facts, before=(), decision="repeated_for_senior")
    misses = int(state.get("misses", 0)) + 1
    if misses >= MAX_TRIES:
        reason = "stuck" if state.get("patient") else _unverified(facts)
        return _person(state, facts, reason, decision=decision, before=(sorry,))
    return _ask_again({**state, "misses": misses}, facts, before=(sorry,), decision=decision)


def _ask_again(state: Mapping[str, Any], facts: Mapping[str, Any], *, before: tuple[str, ...],
               decision: str) -> Step:
    """The current question once more, as it was first asked."""
    node = state["node"]
    if node == "refill":
        ask = _refill_choices(state, facts).actions[0]
        return Step(actions=(Ask((*before, *ask.prompts), listen=ask.listen),), state=dict(state), decision=decision)
    if node == "dob":
        return _ask_dob(state, facts, before=before, decision=decision)
    prompts, listen = _question(node, facts)
    return Step(actions=(Ask((*before, *prompts), listen=listen),), state=dict(state), decision=decision)
