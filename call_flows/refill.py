"""Refill prompt call: the reminder call's greeting, identity check and safeguards (misses,
emergency, stop, a voicemail that names nothing), then the medication that is due, named only now,
and an offer: 1 asks for the refill (a task for the pharmacy team, confirmed by text), 0 puts the
patient through to the pharmacy, 2 says not now, 9 repeats. It is the reminder flow with the
purpose "refill" (see reminder.py); it remembers the prescription as the call began, and a refill
filled or stopped meanwhile is not requested again."""

from __future__ import annotations

from typing import Any, Mapping

from call_flows import reminder
from call_flows.actions import Answered, CallerInput, Step


def start(answered: Answered, facts: Mapping[str, Any] | None = None) -> Step:
    """First words of the call: a voicemail without PHI, or the greeting and identity question."""
    return reminder.start(answered, {**(facts or {}), "purpose": reminder.REFILL})


def advance(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any] | None = None) -> Step:
    """Take the caller's answer (the state carries the purpose)."""
    return reminder.advance(state, caller_input, facts)


def listening(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The intents a spoken answer to the current question may carry."""
    return reminder.listening(state)
