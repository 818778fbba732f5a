"""Spoken answers: fetch the caller's recording from the carrier and recognise it locally.

The audio is held in memory for the recognition only; it is never written to disk or logs.
The transcript, intent, confidence, engine and timings go to the call's audit trail.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import requests
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from call_flows import Spoken
from ivr.config import Settings
from ivr.services import Services
from speech import SpeechError, SpeechModels, load_wav, recognizer_for
from speech.audio import AudioError
from speech.intents import intent_of, phrases_for
from speech.recognizer import can_recognize, how_to_add_engine

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
        engine = recognizer_for(language, settings.speech_models)
        result = engine.recognize(load_wav(response.content).telephone(), phrases_for(language, intents))
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


def voice_answers_shown(enabled: bool, language: str, models: SpeechModels) -> str:
    """A clinic's voice answers as an operator should read them: off, on, or on without effect."""
    if not enabled:
        return "off"
    if can_recognize(language, models):
        return "on"
    return f"on (no engine for {language}: callers answer by key)"


def clinics_without_engine(session: Session, models: SpeechModels) -> list[tuple[int, str]]:
    """(clinic id, language) of each clinic whose voice answers are on in a language that this
    machine cannot recognise: its callers are silently asked for keys only."""
    from ivr.models import Clinic

    rows = session.execute(select(Clinic.id, Clinic.language).where(Clinic.voice_answers.is_(True))
                           .order_by(Clinic.id))
    return [(clinic_id, language) for clinic_id, language in rows if not can_recognize(language, models)]


def warn_about_clinics_without_engine(services: Services) -> None:
    """One WARNING line per clinic that asks for voice answers no engine here can give. Never
    stops start-up: `ivr db upgrade` builds the app before the tables exist."""
    models = services.settings.speech_models
    try:
        with services.sessions() as session:
            missing = clinics_without_engine(session, models)
    except SQLAlchemyError as exc:
        log.info("voice answer engines not checked: the database is not ready (%s)", type(exc).__name__)
        return
    finally:
        services.engine.dispose()  # processes forked from this one (workers) must not share it
    for clinic_id, language in missing:
        log.warning("clinic %s: voice answers are on but no speech engine here recognises %s, so "
                    "callers can only answer by key; %s", clinic_id, language, how_to_add_engine(language))
