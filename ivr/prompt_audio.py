"""Prompts in the clinic's own synthesised voice: which audio a prompt plays from in a webhook,
rendering a call's prompts before it is dialled, and pre-rendering every catalogue.

Webhooks never synthesise (a turn must answer in milliseconds): they play what is in the cache
and fall back to <Say> for anything that is not there yet, noting it in the audit trail.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import prompts
from speech.audio_cache import PromptAudioCache
from speech.common import SpeechError, Voice
from speech.synthesis import Rendered, Synthesizer, render

log = logging.getLogger(__name__)

# Prompts that use only the clinic's values are shared by every call of the clinic; any other
# value may say something about a patient, so a prompt using one is personal (kept briefly,
# private, rendered per call). An allow-list: a new value is personal until said otherwise.
CLINIC_VALUES = frozenset({"clinic", "clinic_phone"})
# Catalogue sections never spoken on their own: text messages, and the phrases values are built
# from (prompts.spoken), which are heard only inside the prompts that carry those values.
NOT_SPOKEN_ALONE = ("sms.", "phrases.")


def voice_for(catalogue: prompts.Catalogue, rate: int | None = None) -> Voice:
    """The synthesiser voice of a language, at the patient's rate or the catalogue's default."""
    return Voice(catalogue.language, catalogue.tts_voice, rate or catalogue.tts_rate)


def is_personal(catalogue: prompts.Catalogue, key: str) -> bool:
    """Whether a prompt's words may depend on a patient."""
    return not catalogue.placeholders(key) <= CLINIC_VALUES


# Prompts of another flow's section that a flow speaks too: the no-show and refill calls greet,
# check who answered, and close like the reminder call (but never say the reminder's details).
_LIKE_REMINDER = ("reminder.greeting", "reminder.identify", "reminder.identify_voice", "reminder.wrong_person",
                  "reminder.no_response", "reminder.voicemail", "reminder.stop_check_voice", "reminder.opted_out")
PROMPTS_SHARED = {"no_show": (*_LIKE_REMINDER, "reminder.changed_meanwhile"), "refill": _LIKE_REMINDER}


def flow_prompt_keys(catalogue: prompts.Catalogue, flow: str) -> list[str]:
    """Every prompt a flow may speak: its own section, those it shares, and the common one."""
    shared = PROMPTS_SHARED.get(flow, ())
    return [key for key in catalogue.texts if key.startswith((f"{flow}.", "common.")) or key in shared]


@dataclass
class PromptPlayer:
    """For one webhook turn: the audio URL of a prompt, or None (then it is said with <Say>).
    Only looks in the cache; remembers which prompts had no audio."""

    cache: PromptAudioCache
    base_url: str
    catalogue: prompts.Catalogue
    values: Mapping[str, str]
    voice: Voice
    said: list[str] = field(default_factory=list)

    def __call__(self, key: str) -> str | None:
        audio_key = self.cache.key(self.voice, self.catalogue.text(key, self.values))
        if self.cache.find(audio_key) is None:
            self.said.append(key)
            return None
        return audio_url(self.base_url, audio_key)


def audio_url(base_url: str, key: str) -> str:
    """Where the carrier fetches a rendered prompt (see ivr/audio.py)."""
    return f"{base_url}/audio/{key}.wav"


@dataclass
class RenderReport:
    """What a batch of renders did."""

    made: int = 0
    cached: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    render_seconds: float = 0.0

    def add(self, rendered: Rendered | None) -> None:
        if rendered is None:
            self.failed += 1
        elif rendered.made:
            self.made += 1
            self.audio_seconds += rendered.seconds
            self.render_seconds += rendered.render_seconds
        else:
            self.cached += 1

    def merge(self, other: RenderReport) -> None:
        for name in ("made", "cached", "failed", "audio_seconds", "render_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def render_prompts(synthesizer: Synthesizer, cache: PromptAudioCache, catalogue: prompts.Catalogue,
                   values: Mapping[str, str], voice: Voice, keys: Iterable[str],
                   progress: Callable[[str], None] | None = None,
                   budget_seconds: float | None = None,
                   clock: Callable[[], float] = time.monotonic) -> RenderReport:
    """Render each prompt that is not in the cache yet. A prompt that fails is logged (by key,
    never by its words) and left to <Say>; the others still render. Past the time budget the
    rest are left to <Say> too (a synthesiser that hangs must not hold up a call for long)."""
    report = RenderReport()
    deadline = None if budget_seconds is None else clock() + budget_seconds
    for key in keys:
        if deadline is not None and clock() > deadline:
            log.warning("prompt %s (%s) not rendered: out of time", key, voice.language)
            report.add(None)
        else:
            report.add(_render_one(synthesizer, cache, catalogue, values, voice, key))
        if progress:
            progress(key)
    return report


def _render_one(synthesizer: Synthesizer, cache: PromptAudioCache, catalogue: prompts.Catalogue,
                values: Mapping[str, str], voice: Voice, key: str) -> Rendered | None:
    """One prompt rendered (or found), or None when it failed."""
    try:
        return render(synthesizer, cache, voice, catalogue.text(key, values),
                      personal=is_personal(catalogue, key))
    except (SpeechError, prompts.PromptError, OSError) as exc:
        log.warning("prompt %s (%s) not rendered: %s", key, voice.language, type(exc).__name__)
        return None


def shared_prompt_keys(catalogue: prompts.Catalogue) -> list[str]:
    """Prompts that say nothing about a patient: the same for every call of a clinic."""
    return [key for key in catalogue.texts
            if not is_personal(catalogue, key) and not key.startswith(NOT_SPOKEN_ALONE)]
