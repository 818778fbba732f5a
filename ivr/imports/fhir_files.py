"""FHIR R4 records from the clinic's EHR: a Bundle (JSON) or a bulk export (NDJSON, one resource a
line) of Patient, Appointment and MedicationRequest, read with fhir.resources (its R4B models,
which read R4's Patient, Appointment and MedicationRequest as they are), matched by identifier
system and value, and written through clinic_records as the API and CSV imports write them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from marshmallow import ValidationError as SchemaRefused
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ivr.api.schemas import AppointmentIn, PatientIn, PrescriptionIn
from ivr.clinic_records import (RecordConflict, RecordKept, RecordRefused, region_of, write_appointment,
                                write_patient, write_prescription)
from ivr.errors import IvrError
from ivr.models import Clinic, utcnow
from prompts import available_languages

KINDS = ("Patient", "Appointment", "MedicationRequest")  # in the order they are written
# FHIR's appointment statuses as ours: those a clinic's campaign has anything to do with.
APPOINTMENT_STATUS = {"proposed": "booked", "pending": "booked", "booked": "booked", "arrived": "confirmed",
                      "checked-in": "confirmed", "fulfilled": "confirmed", "cancelled": "cancelled",
                      "entered-in-error": "cancelled", "noshow": "no_show", "waitlist": "booked"}
ACTIVE_PRESCRIPTION = ("active", "on-hold", "draft")


class FhirRefused(IvrError):
    """The whole input cannot be read as FHIR JSON; nothing was written."""


@dataclass
class FhirReport:
    """What importing a bundle or export did, per resource type."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where: "entry 3 (Patient/p1)", why)
    kept: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)         # resource types not imported

    def count(self, which: dict[str, int], kind: str) -> None:
        which[kind] = which.get(kind, 0) + 1

    def summary(self) -> str:
        parts = [f"{kind}: {self.created.get(kind, 0)} created, {self.updated.get(kind, 0)} updated, "
                 f"{self.unchanged.get(kind, 0)} unchanged" for kind in KINDS]
        text = "; ".join(parts) + f"; {len(self.refused)} refused"
        if self.kept:
            text += f", {len(self.kept)} kept as the patient or staff left them"
        if self.skipped:
            text += " (not imported: " + ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items())) + ")"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "refused": [{"at": at, "why": why} for at, why in self.refused],
                "kept": [{"at": at, "why": why} for at, why in self.kept], "skipped": self.skipped}


def resources_of(text: str) -> list[tuple[str, dict, str | None]]:
    """(where, resource as JSON, its fullUrl) for each resource of a Bundle or of NDJSON lines."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("{") and "\n{" not in stripped.strip():
            document = json.loads(text)
            if document.get("resourceType") == "Bundle":
                return [(f"entry {n}", entry.get("resource") or {}, entry.get("fullUrl"))
                        for n, entry in enumerate(document.get("entry") or [], 1)]
            return [("resource 1", document, None)]
        return [(f"line {n}", json.loads(line), None) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    except (json.JSONDecodeError, AttributeError) as exc:
        raise FhirRefused(f"not FHIR JSON (a Bundle, or NDJSON one resource a line): {exc}") from None


def import_resources(session: Session, clinic: Clinic, found: Iterable[tuple[str, dict, str | None]]) -> FhirReport:
    """Write the Patients, then the Appointments and MedicationRequests, in the caller's transaction;
    each resource in its own savepoint, so a bad one is reported and the rest are written."""
    report, region, now = FhirReport(), region_of(clinic), utcnow()
    parsed: dict[str, list] = {kind: [] for kind in KINDS}
    for where, resource, full_url in found:
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind not in KINDS:
            report.count(report.skipped, str(kind))
            continue
        label = f"{where} ({kind}/{resource.get('id', '?')})"
        try:
            parsed[kind].append((label, get_fhir_model_class(kind).model_validate(resource), full_url))
        except (ValidationError, ValueError, TypeError) as exc:
            if not isinstance(exc, ValidationError) or not exc.errors():
                report.refused.append((label, f"not a valid {kind}"))
                continue
            first = exc.errors()[0]
            report.refused.append((label, f"not a valid {kind}: {'.'.join(map(str, first['loc']))}: {first['msg']}"))
    # A reference names a patient by its bundle address (Patient/id or the entry's fullUrl).
    patients: dict[str, tuple[str, str]] = {}
    for label, patient, full_url in parsed["Patient"]:
        ident = _identifier(patient)
        if ident is not None:
            for address in (f"Patient/{patient.id}", full_url):
                if address:
                    patients[address] = ident
    for kind in KINDS:
        for label, resource, _ in parsed[kind]:
            try:
                with session.begin_nested():
                    written = _write(session, clinic, kind, resource, patients, region, now)
            except RecordKept as exc:
                report.kept.append((label, str(exc)))
                continue
            except (RecordRefused, RecordConflict, FhirValueRefused) as exc:
                where = f"{exc.field}: " if isinstance(exc, RecordRefused) else ""
                report.refused.append((label, where + str(exc)))
                continue
            except SchemaRefused as exc:
                report.refused.append((label, "; ".join(f"{column}: {' '.join(map(str, messages))}" for column, messages
                                                        in sorted(exc.normalized_messages().items()))))
                continue
            report.count(report.created if written.created else report.updated if written.changed
                         else report.unchanged, kind)
    report.refused.sort(key=lambda refusal: int(refusal[0].split()[1]))  # in the file's order
    return report


class FhirValueRefused(IvrError):
    """A resource lacks what we need of it (an identifier, a patient, a phone); says what."""


def _identifier(resource) -> tuple[str, str] | None:
    """The identifier a resource is matched by: its usual or official one, else its first."""
    identifiers = [i for i in (resource.identifier or []) if i.value]
    if not identifiers:
        return None
    chosen = next((i for i in identifiers if i.use in ("usual", "official")), identifiers[0])
    return chosen.system or "", chosen.value


def _write(session: Session, clinic: Clinic, kind: str, resource, patients: dict[str, tuple[str, str]],
           region: str, now: dt.datetime):
    ident = _identifier(resource)
    if ident is None:
        raise FhirValueRefused("it has no identifier with a value to match it by")
    system, value = ident
    if len(value) > 200 or len(system) > 200:
        raise FhirValueRefused("its identifier is longer than 200 characters")
    if kind == "Patient":
        body = PatientIn().load(_patient_body(resource))
        return write_patient(session, clinic, value, body, "fhir", region, system=system)
    patient_system, patient_value = _patient_of(resource, patients)
    if kind == "Appointment":
        body = AppointmentIn().load(_appointment_body(resource, clinic, patient_value))
        return write_appointment(session, clinic.id, value, body, now, system=system, patient_system=patient_system)
    body = PrescriptionIn().load(_prescription_body(resource, patient_value))
    return write_prescription(session, clinic, value, body, now, region, system=system, patient_system=patient_system)


def _patient_body(patient) -> dict:
    """A FHIR Patient as the API's patient body."""
    names = patient.name or []
    name = next((n for n in names if n.use in ("official", "usual")), names[0] if names else None)
    phones = [t for t in (patient.telecom or []) if t.system in ("phone", "sms") and t.value]
    phone = next((t for t in phones if t.use == "mobile"), next((t for t in phones if t.use != "old"), None))
    if name is None or not (name.given or []) or not name.family:
        raise FhirValueRefused("it has no name with a given and a family name")
    if phone is None:
        raise FhirValueRefused("it has no phone number")
    body = {"first_name": name.given[0], "last_name": name.family, "phone": phone.value,
            "preferred_channel": "sms" if phone.system == "sms" else "voice"}
    if patient.birthDate:  # (a partial date, "1946", stays a string, which the schema refuses)
        born = patient.birthDate
        body["date_of_birth"] = born.isoformat() if isinstance(born, dt.date) else str(born)
    spoken = _language(patient)
    if spoken:
        body["language"] = spoken
    return body


def _language(patient) -> str | None:
    """The patient's preferred language among ours ("es-US" is es), else their first we speak."""
    ours = available_languages()
    choices = sorted(patient.communication or [], key=lambda c: not c.preferred)
    for communication in choices:
        codes = [c.code for c in (communication.language.coding or []) if c.code]
        for code in codes:
            base = code.split("-")[0].lower()
            if base in ours:
                return base
    return None


def _patient_of(resource, patients: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """The identifier of the patient an Appointment or MedicationRequest is for: the bundle's
    Patient it refers to, or an identifier given in the reference itself."""
    references = ([p.actor for p in (resource.participant or []) if p.actor] if hasattr(resource, "participant")
                  else [resource.subject] if resource.subject else [])
    for reference in references:
        if reference.reference and reference.reference in patients:
            return patients[reference.reference]
        if reference.identifier and reference.identifier.value and (
                (reference.type or "Patient") == "Patient" or (reference.reference or "").startswith("Patient/")):
            return reference.identifier.system or "", reference.identifier.value
    raise FhirValueRefused("it names no patient of this bundle (a Patient reference, or a reference with the "
                           "patient's identifier)")


def _appointment_body(appointment, clinic: Clinic, patient: str) -> dict:
    """A FHIR Appointment as the API's appointment body: its practitioner's name, its location by
    name among the clinic's (else the clinic's first), its start."""
    if appointment.start is None:
        raise FhirValueRefused("it has no start")
    if appointment.status not in APPOINTMENT_STATUS:
        raise FhirValueRefused(f"its status is not one of FHIR's ({', '.join(APPOINTMENT_STATUS)})")
    actors = [p.actor for p in (appointment.participant or []) if p.actor]
    provider = next((a.display for a in actors if (a.reference or "").startswith("Practitioner/") and a.display),
                    None)
    if not provider:
        raise FhirValueRefused("it names no practitioner (a participant Practitioner with a display name)")
    places = {location.name.lower(): location.id for location in clinic.locations}
    place = next((places[a.display.lower()] for a in actors
                  if (a.reference or "").startswith("Location/") and a.display and a.display.lower() in places), None)
    if place is None and not clinic.locations:
        raise FhirValueRefused("the clinic has no location to hold it")
    kind = appointment.appointmentType.text if appointment.appointmentType else None
    return {"patient": patient, "location_id": place or min(l.id for l in clinic.locations),
            "provider_name": provider, "starts_at": appointment.start.isoformat(),
            "appointment_type": kind[:40] if kind else None,
            "status": APPOINTMENT_STATUS[appointment.status]}


def _prescription_body(request, patient: str) -> dict:
    """A FHIR MedicationRequest as the API's prescription body: the medication as the patient
    knows it, refills allowed, and the day it runs out when its supply duration says."""
    concept = request.medicationCodeableConcept
    medication = concept and (concept.text or next((c.display for c in concept.coding or [] if c.display), None))
    if not medication and request.medicationReference is not None:
        medication = request.medicationReference.display
    if not medication:
        raise FhirValueRefused("it names no medication (medicationCodeableConcept.text or a coding's display)")
    body: dict = {"patient": patient, "medication": medication[:200],
                  "active": request.status in ACTIVE_PRESCRIPTION}
    dispense = request.dispenseRequest
    if dispense is not None and dispense.numberOfRepeatsAllowed is not None:
        body["refills_left"] = min(int(dispense.numberOfRepeatsAllowed), 99)
    supply = dispense and dispense.expectedSupplyDuration
    authored = request.authoredOn
    authored = authored.date() if isinstance(authored, dt.datetime) else authored
    if supply is not None and supply.value is not None and isinstance(authored, dt.date):
        days = {"d": 1, "wk": 7, "mo": 30}.get(supply.code or supply.unit or "d", 1) * float(supply.value)
        if 0 < days <= 3660:
            try:
                body["refill_due_on"] = (authored + dt.timedelta(days=round(days))).isoformat()
            except OverflowError:
                pass  # a supply running out past year 9999: no due day
    return body
