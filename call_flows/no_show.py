"""No-show recovery call: the reminder call's greeting, identity check and safeguards (misses,
emergency, stop, a voicemail without details), then "we missed you at your appointment" and an
offer of a new one: 1 asks for it (the office calls back within a business day: a task), 2
declines, 9 repeats. It is the reminder flow with the purpose "no_show" (see reminder.py)."""

from __future__ import annotations

from typing import Any, Mapping

from call_flows import reminder
from call_flows.actions import Answered, CallerInput, Step


def start(answered: Answered, facts: Mapping[str, Any] | None = None) -> Step:
    """First words of the call: a voicemail without PHI, or the greeting and identity question."""
    return reminder.start(answered, {**(facts or {}), "purpose": reminder.NO_SHOW})


def advance(state: Mapping[str, Any], caller_input: CallerInput, facts: Mapping[str, Any] | None = None) -> Step:
    """Take the caller's answer (the state carries the purpose)."""
    return reminder.advance(state, caller_input, facts)


def listening(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The intents a spoken answer to the current question may carry."""
    return reminder.listening(state)
