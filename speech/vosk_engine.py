"""Vosk (Kaldi): the primary engine, one model folder per language, grammar per question."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Sequence

from speech.audio import TELEPHONE_RATE, Audio
from speech.common import Recognition, SpeechError


class VoskEngine:
    """A Vosk model loaded once and shared by threads; a fresh recogniser per answer."""

    name = "vosk"

    def __init__(self, language: str, model_dir: Path) -> None:
        import vosk

        if not (Path(model_dir) / "am").is_dir() and not (Path(model_dir) / "conf").is_dir():
            # vosk.Model with a missing folder can end the process; check first.
            raise SpeechError(f"{model_dir} is not a Vosk model folder (no am/ or conf/)")
        vosk.SetLogLevel(-1)
        self.language, self.model_dir = language, Path(model_dir)
        self._vosk = vosk
        self._model = vosk.Model(str(model_dir))  # always a folder: a language name would download
        self._has_unk = self._model.vosk_model_find_word("[unk]") >= 0
        self._lock = threading.Lock()

    def _grammar(self, grammar: Sequence[str]) -> str:
        phrases = [" ".join(p.split()) for p in grammar if p.strip() and p != "[unk]"]
        if not phrases:
            raise SpeechError("a grammar needs at least one phrase")
        unknown = sorted({w for p in phrases for w in p.split() if self._model.vosk_model_find_word(w) < 0})
        if unknown:
            raise SpeechError(f"not in the {self.language} model's vocabulary: {', '.join(unknown)}")
        if self._has_unk:
            phrases.append("[unk]")  # lets the recogniser say "none of these"
        return json.dumps(phrases, ensure_ascii=False)

    def recognize(self, audio: Audio, grammar: Sequence[str]) -> Recognition:
        """The grammar phrase heard in telephone-rate audio, or '' for nothing or [unk]."""
        started = time.perf_counter()
        recognizer = self._vosk.KaldiRecognizer(self._model, TELEPHONE_RATE, self._grammar(grammar))
        recognizer.SetWords(True)
        recognizer.AcceptWaveform(audio.pcm16(TELEPHONE_RATE))
        result = json.loads(recognizer.FinalResult())
        words = [w for w in result.get("result", []) if w.get("word") != "[unk]"]
        text = " ".join(w["word"] for w in words)
        confidence = min((float(w.get("conf", 0.0)) for w in words), default=0.0)
        return Recognition(text, confidence, self.name, audio.seconds, time.perf_counter() - started)
