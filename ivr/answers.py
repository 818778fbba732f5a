"""Spoken answers: fetch the caller's recording from the carrier and recognise it locally.

The audio is held in memory for the recognition only; it is never written to disk or logs.
The transcript, intent, confidence, engine and timings go to the call's audit trail.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from call_flows import Spoken
from ivr.errors import RecordingError
from ivr.services import Services
from ivr.telephony import CarrierRecordings
from speech import SpeechError, SpeechModels, load_wav, recognizer_for
from speech.audio import AudioError
from speech.intents import intent_of, phrases_for
from speech.recognizer import can_recognize, how_to_add_engine

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
