"""Spoken answers: fetch the caller's recording from the carrier and recognise it locally.

The audio is held in memory for the recognition only; it is never written to disk or logs.
The transcript, intent, confidence, engine and timings go to the call's audit trail.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from call_flows import Spoken
from ivr.errors import RecordingError
from ivr.telephony import CarrierRecordings
from speech import SpeechError, SpeechModels, load_wav, recognizer_for
from speech.audio import AudioError
from speech.intents import intent_of, phrases_for
from speech.spoken_values import recognize_value

# What a question that asks for a value (call_flows: Ask.listen) listens for.
SPOKEN_VALUES = {"=date": "date"}

log = logging.getLogger(__name__)


def recognise(recordings: CarrierRecordings, models: SpeechModels, recording_url: str, language: str,
              intents: Sequence[str]) -> tuple[Spoken, dict[str, Any]]:
    """The caller's spoken answer as an intent, plus what the audit trail keeps about it. (The
    recording is deleted at the carrier by a job once the turn has recorded it.)"""
    try:
        audio = recordings.fetch(recording_url)
        engine = recognizer_for(language, models)
        result = engine.recognize(load_wav(audio).telephone(), phrases_for(language, intents))
    except (RecordingError, AudioError, SpeechError) as exc:
        log.warning("spoken answer not recognised: %s", type(exc).__name__)
        return Spoken(None), {"speech": {"error": type(exc).__name__}}
    intent = intent_of(language, result)
    audit = {"text": result.text, "intent": intent, "confidence": round(result.confidence, 3),
             "engine": result.engine, "audio_seconds": round(result.audio_seconds, 3),
             "processing_seconds": round(result.processing_seconds, 4)}
    if result.rejected:
        audit["rejected"] = result.rejected  # heard, but too unsure to act on
    return Spoken(intent, result.confidence), {"speech": audit}


def recognise_value(recordings: CarrierRecordings, models: SpeechModels, recording_url: str, language: str,
                    listen: str) -> tuple[Spoken, dict[str, Any]]:
    """A spoken value (a date of birth) as Spoken(kind, confidence, value). The answer is first
    heard against the phrases that work at every question (a person, an emergency): a caller
    asked for a date may ask for help instead."""
    kind = SPOKEN_VALUES[listen]
    try:
        audio = load_wav(recordings.fetch(recording_url)).telephone()
        engine = recognizer_for(language, models)
        asked = engine.recognize(audio, phrases_for(language, ["operator"]))
        # Only a phrase accepted at its threshold (or found in a free transcript) counts here.
        intent = intent_of(language, asked, trust_unsure_emergency=False)
        if intent is not None:
            return Spoken(intent, asked.confidence), {"speech": {
                "text": asked.text, "intent": intent, "confidence": round(asked.confidence, 3),
                "engine": asked.engine, "audio_seconds": round(asked.audio_seconds, 3),
                "processing_seconds": round(asked.processing_seconds, 4)}}
        heard = recognize_value(engine, audio, kind)
    except (RecordingError, AudioError, SpeechError) as exc:
        log.warning("spoken %s not recognised: %s", kind, type(exc).__name__)
        return Spoken(None), {"speech": {"error": type(exc).__name__}}
    value = heard.value.isoformat() if heard.value is not None else None
    audit = {"text": heard.text, "kind": kind, "value": value, "confidence": round(heard.confidence, 3),
             "engine": heard.engine, "audio_seconds": round(heard.audio_seconds, 3),
             "processing_seconds": round(asked.processing_seconds + heard.processing_seconds, 4)}
    return (Spoken(kind, heard.confidence, value) if value else Spoken(None)), {"speech": audit}
