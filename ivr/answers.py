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
