"""Local speech: recognisers that run on the clinic's own machines (Vosk; pocketsphinx as the
bundled English fallback) and the prompt synthesiser. Patients' audio never leaves the
building and never reaches a log."""

from speech.audio import Audio, load_wav
from speech.common import (AudioError, Recognition, SpeechError, SpeechModels, SynthesisError,
                           Voice)
from speech.recognizer import Recognizer, available_engines, recognizer_for

__all__ = ["Audio", "load_wav", "AudioError", "Recognition", "SpeechError", "SpeechModels",
           "SynthesisError", "Voice", "Recognizer", "available_engines", "recognizer_for"]
