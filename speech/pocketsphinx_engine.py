"""pocketsphinx with the US English model its wheel carries: the offline English fallback.

The model is 16 kHz, so telephone audio (8 kHz) is upsampled first. A grammar always yields one of
its phrases, or nothing; it never says "none of these" by itself, so consequential answers must be
confirmed (measured in bench/speech.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from typing import Sequence

import pocketsphinx

from speech.audio import Audio
from speech.recognizer import Recognition, SpeechError

MODEL_RATE = 16000
# Silence added around the answer: clipped recordings leave the decoder's silence model nothing to
# align with, and it then misses short words (measured on ../shared/speech: "stop" 14 -> 16 of 22).
PADDING_SECONDS = 0.3


class PocketsphinxEngine:
    """Grammar-restricted recognition; one decoder per thread (decoders are not thread-safe)."""

    name = "pocketsphinx"
    language = "en"

    def __init__(self) -> None:
        root = os.path.join(pocketsphinx.get_model_path(), "en-us")
        self._config = dict(hmm=os.path.join(root, "en-us"), dict=os.path.join(root, "cmudict-en-us.dict"),
                            lm=None, samprate=MODEL_RATE, loglevel="FATAL")
        self._local = threading.local()
        self._decoder()  # load now: a broken install fails at start-up, not on a patient's answer

    def _decoder(self) -> pocketsphinx.Decoder:
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            decoder = self._local.decoder = pocketsphinx.Decoder(pocketsphinx.Config(**self._config))
            self._local.searches = set()
        return decoder

    def _activate(self, decoder: pocketsphinx.Decoder, grammar: Sequence[str]) -> None:
        phrases = [" ".join(p.lower().split()) for p in grammar if p.strip() and p != "[unk]"]
        if not phrases:
            raise SpeechError("a grammar needs at least one phrase")
        unknown = sorted({w for p in phrases for w in p.split() if decoder.lookup_word(w) is None})
        if unknown:
            raise SpeechError(f"not in the English dictionary: {', '.join(unknown)}")
        name = "g" + hashlib.sha1("|".join(phrases).encode()).hexdigest()[:16]
        if name not in self._local.searches:
            alternatives = " | ".join(_jsgf_token(p) for p in phrases)
            decoder.add_jsgf_string(name, f"#JSGF V1.0;\ngrammar {name};\npublic <answer> = {alternatives} ;\n")
            self._local.searches.add(name)
        decoder.activate_search(name)

    def recognize(self, audio: Audio, grammar: Sequence[str]) -> Recognition:
        """The grammar phrase heard in audio, or '' when nothing matched."""
        started = time.perf_counter()
        decoder = self._decoder()
        self._activate(decoder, grammar)
        decoder.start_utt()
        decoder.process_raw(audio.padded(PADDING_SECONDS).pcm16(MODEL_RATE), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        text = hypothesis.hypstr.strip() if hypothesis else ""
        return Recognition(text, 1.0 if text else 0.0, self.name, audio.seconds,
                           time.perf_counter() - started)


def _jsgf_token(phrase: str) -> str:
    if not re.fullmatch(r"[a-z' ]+", phrase):
        raise SpeechError(f"grammar phrase {phrase!r} may hold only letters, spaces and apostrophes")
    return phrase
