"""Types and errors that every speech module shares.

A leaf: it imports nothing else of ours, so any speech module can import it first, in any order,
without a circle (the engines, the recogniser choice and the synthesiser all depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


class SpeechError(Exception):
    """Root of the errors of the speech package (no engine, unusable model, bad grammar)."""


class AudioError(SpeechError):
    """Audio that cannot be read or used."""


class SynthesisError(SpeechError):
    """Text could not be turned into audio (no such voice, the engine failed or hung)."""


@dataclass(frozen=True)
class Recognition:
    """What an engine heard: the text (one of the grammar's phrases, or '' for nothing), and the
    phrase it heard but did not trust (`rejected`, below its confidence threshold)."""

    text: str
    confidence: float
    engine: str
    audio_seconds: float
    processing_seconds: float
    rejected: str = ""


@dataclass(frozen=True)
class Voice:
    """How a prompt is spoken: the language, the synthesiser's voice and words per minute."""

    language: str
    name: str
    rate: int


@dataclass(frozen=True)
class SpeechModels:
    """Where this machine's speech models are and how hard they may work, as the caller's
    settings say (the speech package reads no environment of its own)."""

    vosk_dir: Path                        # installed models, one folder per language in it
    vosk_by_language: Mapping[str, Path] = field(default_factory=dict)  # explicit folders
    # Installed Whisper conversions, a folder per model name (tiny.en, base); when a model is not
    # there, the verified copy a Python package ships is used.
    whisper_dir: Path = Path("whisper-models")
    whisper_decodes: int = 2              # answers decoded at once per process (the rest wait)
    whisper_threads: int = 1              # CPU threads each decode uses

    def vosk_override(self, language: str) -> Path | None:
        """The folder set explicitly for a language's Vosk model, if any."""
        return self.vosk_by_language.get(language)
