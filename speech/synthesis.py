"""The Synthesizer interface, its test double, and rendering prompts into the audio cache.

The real synthesiser (espeak-ng's command line) is in speech/espeak_engine.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from speech.audio import Audio
from speech.audio_cache import PromptAudioCache
from speech.common import SynthesisError, Voice

class Synthesizer(Protocol):
    """Speaks text in a voice at a rate; one audio clip per text."""

    name: str

    def synthesize(self, voice: Voice, text: str) -> Audio: ...

    def close(self) -> None:
        """Release what the engine holds between prompts (commands call it when they finish)."""


@dataclass(frozen=True)
class Rendered:
    """One prompt put in the cache (or found there)."""

    key: str
    seconds: float
    made: bool                  # False: it was in the cache already
    render_seconds: float = 0.0


def render(synthesizer: Synthesizer, cache: PromptAudioCache, voice: Voice, text: str, *,
           personal: bool) -> Rendered:
    """Make sure the cache holds these words in this voice; synthesise them only if it does not."""
    key = cache.key(voice, text)
    if cache.find(key) is not None:
        if personal:
            cache.refresh(key)
        return Rendered(key, 0.0, made=False)
    started = time.perf_counter()
    audio = synthesizer.synthesize(voice, text)
    if audio.seconds < 0.1:
        raise SynthesisError(f"{synthesizer.name} produced no audio for a {len(text)}-character text")
    wav = audio.mulaw_wav()
    elapsed = time.perf_counter() - started
    cache.store(key, wav, {"language": voice.language, "voice": voice.name, "rate": voice.rate,
                           "text": text, "seconds": round(audio.seconds, 2),
                           "engine": synthesizer.name}, personal=personal)
    return Rendered(key, audio.seconds, made=True, render_seconds=elapsed)


class RecordingSynthesizer:
    """Test double: records every request and answers with a quiet tone whose length follows
    the words and the rate (so a slower rate still gives longer audio)."""

    name = "recording"

    def __init__(self, fail_on: str | None = None) -> None:
        self.requests: list[tuple[Voice, str]] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def synthesize(self, voice: Voice, text: str) -> Audio:
        with self._lock:
            self.requests.append((voice, text))
        if self.fail_on and self.fail_on in text:
            raise SynthesisError("the test asked this text to fail")
        rate = 8000
        seconds = max(0.2, 60.0 * len(text.split()) / voice.rate)
        t = np.arange(int(seconds * rate), dtype=np.float32) / rate
        return Audio((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)

    def close(self) -> None:
        pass
