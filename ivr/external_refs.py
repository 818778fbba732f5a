"""The clinic's own ids for our patients, appointments and prescriptions (external_ref): what
its scheduling system calls them (system ''), for the API, imports and events."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.models import ExternalRef


def row_id(session: Session, clinic_id: int, kind: str, external_id: str, system: str = "") -> int | None:
    """Our id of the clinic's patient, appointment or prescription `external_id` (in `system`:
    '' for the scheduling system's ids, else a FHIR identifier system)."""
    return session.scalar(select(ExternalRef.row_id).where(
        ExternalRef.clinic_id == clinic_id, ExternalRef.kind == kind, ExternalRef.system == system,
        ExternalRef.value == external_id))


def external_ids(session: Session, clinic_id: int, kind: str, ids: Iterable[int | None]) -> dict[int, str]:
    """The clinic's ids of some of our rows of one kind."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(ExternalRef.row_id, ExternalRef.value).where(
        ExternalRef.clinic_id == clinic_id, ExternalRef.kind == kind, ExternalRef.system == "",
        ExternalRef.row_id.in_(ids))).all())


def identifiers(session: Session, clinic_id: int, kind: str, ids: Iterable[int | None]) -> dict[int, tuple[str, str]]:
    """An identifier (system, value) of each of some of our rows: a FHIR system's where it came
    from the EHR, else the scheduling system's ('' system)."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    found: dict[int, tuple[str, str]] = {}
    for row, system, value in session.execute(select(ExternalRef.row_id, ExternalRef.system, ExternalRef.value).where(
            ExternalRef.clinic_id == clinic_id, ExternalRef.kind == kind, ExternalRef.row_id.in_(ids))
            .order_by(ExternalRef.system == "", ExternalRef.id)):
        found.setdefault(row, (system, value))
    return found
