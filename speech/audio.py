"""Audio helpers: read any WAV, make it telephone-like, resample, hand engines 16-bit PCM.
(audioop is gone in Python 3.13; soundfile reads, soxr resamples.)"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from speech.common import AudioError

__all__ = ["TELEPHONE_RATE", "Audio", "AudioError", "load_wav"]

TELEPHONE_RATE = 8000


@dataclass(frozen=True)
class Audio:
    """Mono samples in [-1, 1] at a sample rate."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.rate)

    def resampled(self, rate: int) -> Audio:
        """The same audio at another rate (high-quality polyphase resampling)."""
        if rate == self.rate:
            return self
        return Audio(soxr.resample(self.samples, self.rate, rate).astype(np.float32), rate)

    def telephone(self) -> Audio:
        """What a phone line would have carried: 8 kHz (so at most 4 kHz of bandwidth)."""
        return self.resampled(TELEPHONE_RATE)

    def padded(self, seconds: float) -> Audio:
        """The audio with silence before and after."""
        silence = np.zeros(int(seconds * self.rate), dtype=np.float32)
        return Audio(np.concatenate([silence, self.samples, silence]), self.rate)

    def mulaw_wav(self) -> bytes:
        """8 kHz mono mu-law WAV: what the telephone network carries, and what <Play> streams
        without converting."""
        buffer = io.BytesIO()
        soundfile.write(buffer, np.clip(self.telephone().samples, -1.0, 1.0), TELEPHONE_RATE,
                        format="WAV", subtype="ULAW")
        return buffer.getvalue()

    def pcm16(self, rate: int) -> bytes:
        """Little-endian 16-bit PCM at rate, as recognisers take it."""
        samples = self.resampled(rate).samples
        return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def load_wav(source: str | Path | bytes) -> Audio:
    """Read a WAV file or WAV bytes of any rate and width; channels are mixed to mono."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        samples, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, OSError) as exc:
        raise AudioError(f"cannot read audio: {exc}") from None
    return Audio(samples.mean(axis=1).astype(np.float32), int(rate))
