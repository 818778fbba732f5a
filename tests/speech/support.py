"""Audio the speech tests build from the development clips."""

import numpy as np

from speech import load_wav
from speech.audio import Audio

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digit_string(clips, speaker: str, digits: str) -> Audio:
    """Real FSDD digits of one speaker with 0.25 s pauses, at telephone quality (8 kHz mu-law)."""
    parts = []
    for digit in digits:
        clip = load_wav(next((clips / DIGIT_WORDS[int(digit)]).glob(f"fsdd_{digit}_{speaker}_*.wav")))
        parts += [clip.samples, np.zeros(int(0.25 * clip.rate), np.float32)]
    return load_wav(Audio(np.concatenate(parts), 8000).mulaw_wav())
