"""Spoken answers: fetch the caller's recording from the carrier and recognise it locally.

The audio is held in memory for the recognition only; it is never written to disk or logs.
The transcript, intent, confidence, engine and timings go to the call's audit trail.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import requests

from call_flows import Spoken
from ivr.config import Settings
from speech import SpeechError, load_wav, recognizer_for
from speech.audio import AudioError
from speech.intents import intent_of, phrases_for

log = logging.getLogger(__name__)
TWILIO_API = "https://api.twilio.com/"


def carrier_api_base(settings: Settings) -> str:
    """Where recordings may come from: our credentials are sent nowhere else."""
    if settings.twilio_api_url:
        return settings.twilio_api_url.rstrip("/") + "/"
    if settings.carrier == "sandbox":
        return f"{settings.public_base_url}/sandbox/"
    return TWILIO_API


def recognise(settings: Settings, recording_url: str, language: str,
              intents: Sequence[str]) -> tuple[Spoken, dict[str, Any]]:
    """The caller's spoken answer as an intent, plus what the audit trail keeps about it."""
    if not recording_url.startswith(carrier_api_base(settings)):
        log.warning("recording URL is not on the carrier's API host; not fetched")
        return Spoken(None), {"speech": {"error": "recording not on the carrier's host"}}
    try:
        response = requests.get(recording_url, timeout=5,
                                auth=(settings.twilio_account_sid, settings.twilio_auth_token))
        response.raise_for_status()
        result = recognizer_for(language).recognize(load_wav(response.content).telephone(),
                                                    phrases_for(language, intents))
    except (requests.RequestException, AudioError, SpeechError) as exc:
        log.warning("spoken answer not recognised: %s", type(exc).__name__)
        return Spoken(None), {"speech": {"error": type(exc).__name__}}
    intent = intent_of(language, result)
    audit = {"text": result.text, "intent": intent, "confidence": round(result.confidence, 3),
             "engine": result.engine, "audio_seconds": round(result.audio_seconds, 3),
             "processing_seconds": round(result.processing_seconds, 4)}
    if result.rejected:
        audit["rejected"] = result.rejected  # heard, but too unsure to act on
    return Spoken(intent, result.confidence), {"speech": audit}
