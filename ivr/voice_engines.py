"""Which clinics ask for voice answers that this machine cannot give, for operators: shown in
`ivr clinics list` and warned about when the app starts."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ivr.services import Services
from speech import SpeechModels
from speech.recognizer import can_recognize, how_to_add_engine

log = logging.getLogger(__name__)


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
