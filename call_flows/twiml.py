"""Render engine actions to TwiML with twilio.twiml (never hand-built XML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from call_flows.actions import Action, Ask, Enqueue, Hangup, Say, TakeMessage, Transfer
from call_flows.text import xml_safe


RECORD_FINISH_KEYS = "0123456789*#"
RECORD_MAX_SECONDS = 6      # a short answer; a long recording is a caller talking to someone else
RECORD_SILENCE_SECONDS = 3  # silence that ends the answer
MESSAGE_SILENCE_SECONDS = 5  # a pause this long ends a message left for staff
# Senior mode: how much longer a question waits for keys (6 s -> 10 s), and how long for a
# spoken answer to start or go on.
SLOW_EXTRA_KEYS_SECONDS = 4
SLOW_SILENCE_SECONDS = 5
SLOW_EXTRA_RECORD_SECONDS = 4


@dataclass(frozen=True)
class TwimlContext:
    """What rendering needs besides the actions: how prompts are spoken, where answers go."""

    text: Callable[[str], str]      # prompt key -> spoken text
    say_language: str               # e.g. en-US
    step_url: str                   # where Gather posts keys and where silence is redirected
    transfer_number: str | None     # the clinic's staff number, from configuration only
    dial_url: str | None = None     # where a transfer reports how it ended (DialCallStatus)
    whisper_url: Callable[[str], str] | None = None  # prompt key -> URL staff hear it from
    audio_url: Callable[[str], str | None] | None = None  # prompt key -> its rendered audio, if any
    say_language_for: Callable[[str], str] | None = None   # prompt key -> its say language, when
                                                           # a prompt may be in another language
    slow: bool = False  # senior mode: every question waits longer for keys and for words
    staff_numbers: tuple[str, ...] = ()  # every staff line in order (transfer_number first)
    queue_name: str | None = None         # the caller's own queue (Enqueue)
    queue_action_url: str | None = None   # where leaving the queue is reported (QueueResult)
    queue_wait_url: str | None = None     # what the caller hears while waiting (their place, the wait)
    pharmacy_number: str | None = None    # the pharmacy of the prescription a refill call is about


def _speak(target, key: str, context: TwimlContext) -> None:
    """A prompt as <Play> of its rendered audio when there is some, else as <Say>."""
    url = context.audio_url(key) if context.audio_url else None
    if url:
        target.play(url)
    else:
        language = context.say_language_for(key) if context.say_language_for else context.say_language
        target.say(xml_safe(context.text(key)), language=language)


def render(actions: Iterable[Action], context: TwimlContext, redirect_after_ask: bool = True) -> str:
    """TwiML for a step: every Gather is followed by a Redirect so silence still reaches us
    (unless redirect_after_ask is False: then the verbs after it say what silence does)."""
    response = VoiceResponse()
    for action in actions:
        if isinstance(action, Say):
            _speak(response, action.prompt, context)
        elif isinstance(action, Ask) and action.listen:
            # Voice or key on the same prompt: a key ends the recording and arrives as Digits.
            for key in action.prompts:
                _speak(response, key, context)
            longest = action.max_seconds or RECORD_MAX_SECONDS
            response.record(action=context.step_url, method="POST", finish_on_key=RECORD_FINISH_KEYS,
                            max_length=longest + SLOW_EXTRA_RECORD_SECONDS if context.slow else longest,
                            timeout=SLOW_SILENCE_SECONDS if context.slow else RECORD_SILENCE_SECONDS,
                            play_beep=False, trim="trim-silence")
            response.redirect(context.step_url, method="POST")
        elif isinstance(action, Ask):
            timeout = action.timeout + SLOW_EXTRA_KEYS_SECONDS if context.slow else action.timeout
            gather = Gather(input="dtmf", num_digits=action.num_digits, timeout=timeout,
                            action=context.step_url, method="POST")
            for key in action.prompts:
                _speak(gather, key, context)
            response.append(gather)
            if redirect_after_ask:
                response.redirect(context.step_url, method="POST")
        elif isinstance(action, TakeMessage):
            # After the tone; # or silence ends it. With nothing recorded Twilio goes on to the
            # Redirect, so the flow still hears that no message came.
            response.record(action=context.step_url, method="POST", finish_on_key="#",
                            max_length=action.max_seconds, play_beep=True,
                            timeout=MESSAGE_SILENCE_SECONDS + (SLOW_EXTRA_KEYS_SECONDS if context.slow else 0),
                            trim="trim-silence")
            response.redirect(context.step_url, method="POST")
        elif isinstance(action, Transfer):
            if action.pharmacy and context.pharmacy_number:
                number = context.pharmacy_number  # else the pharmacy team is the clinic's staff
            else:
                number = (context.staff_numbers[action.line] if action.line < len(context.staff_numbers)
                          else context.transfer_number)
            if not number:
                raise ValueError("a Transfer needs the clinic's staff number")
            dial = Dial(action=context.dial_url, method="POST") if context.dial_url else Dial()
            if action.whisper and context.whisper_url:
                dial.number(number, url=context.whisper_url(action.whisper), method="POST")
            else:
                dial.number(number)
            response.append(dial)
        elif isinstance(action, Enqueue):
            if not (context.queue_name and context.queue_action_url and context.queue_wait_url):
                raise ValueError("an Enqueue needs the queue's name, action URL and wait URL")
            response.enqueue(context.queue_name, action=context.queue_action_url, method="POST",
                             wait_url=context.queue_wait_url, wait_url_method="POST")
        elif isinstance(action, Hangup):
            response.hangup()
        else:
            raise TypeError(f"cannot render {action!r}")
    return str(response)


def hangup() -> str:
    """TwiML that only ends the call."""
    response = VoiceResponse()
    response.hangup()
    return str(response)
