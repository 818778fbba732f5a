"""Local speech: recognisers that run on the clinic's own machines (Vosk; pocketsphinx as the
bundled English fallback). Patients' audio never leaves the building and never reaches a log."""

from speech.audio import Audio, load_wav
from speech.recognizer import (Recognition, Recognizer, SpeechError, available_engines,
                               recognizer_for)

__all__ = ["Audio", "load_wav", "Recognition", "Recognizer", "SpeechError", "available_engines",
           "recognizer_for"]
