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
from sqlalchemy.orm import Session, sessionmaker

from ivr.api.schemas import AppointmentIn, PatientIn, PrescriptionIn
from ivr.clinic_records import (RecordConflict, RecordKept, RecordRefused, region_of, write_appointment,
                                write_patient, write_prescription)
from ivr.errors import IvrError
from ivr.models import Clinic, utcnow
from prompts import available_languages

KINDS = ("Patient", "Appointment", "MedicationRequest")  # in the order they are written
# FHIR's appointment statuses as ours: those a clinic's campaign has anything to do with.
# None: not booked yet (proposed, pending, waitlist), so not imported: nobody is reminded of it.
APPOINTMENT_STATUS = {"proposed": None, "pending": None, "waitlist": None, "booked": "booked",
                      "arrived": "confirmed", "checked-in": "confirmed", "fulfilled": "confirmed",
                      "cancelled": "cancelled", "entered-in-error": "cancelled", "noshow": "no_show"}
ACTIVE_PRESCRIPTION = ("active", "on-hold")
# A supply's duration in days, by its UCUM code or its unit's name.
DAYS_IN = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7, "mo": 30, "month": 30, "months": 30}


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


def resources_of(text: str, ndjson: bool | None = None) -> list[tuple[str, dict, str | None]]:
    """(where, resource as JSON, its fullUrl) for each resource of a Bundle (or one resource),
    or of NDJSON lines; `ndjson` None: a whole JSON document if it is one, else NDJSON."""
    text = text.lstrip("\ufeff")
    try:
        if ndjson is not True:
            try:
                return _of_document(json.loads(text))
            except json.JSONDecodeError:
                if ndjson is False:
                    raise
        return [(f"line {n}", json.loads(line), None) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise FhirRefused(f"not FHIR JSON (a Bundle, or NDJSON one resource a line): {reason}") from None


def _of_document(document) -> list[tuple[str, dict, str | None]]:
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            raise FhirRefused("a Bundle's entry must be a list")
        return [(f"entry {n}", (entry.get("resource") if isinstance(entry, dict) else None) or {},
                 entry.get("fullUrl") if isinstance(entry, dict) else None) for n, entry in enumerate(entries, 1)]
    return [("resource 1", document, None)]


# Resources written per transaction: a long export must not hold SQLite's write lock for long.
BATCH = 500


def import_resources(sessions: sessionmaker[Session], clinic_id: int,
                     found: Iterable[tuple[str, dict, str | None]]) -> FhirReport:
    """Write the Patients, then the Appointments and MedicationRequests, BATCH to a transaction
    and each in its own savepoint, so a bad one is reported and the rest are written."""
    report, now = FhirReport(), utcnow()
    parsed: dict[str, list] = {kind: [] for kind in KINDS}
    for where, resource, full_url in found:
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind not in KINDS:
            report.count(report.skipped, str(kind) if kind else "entry without a resource")
            continue
        label = f"{where} ({kind})"
        try:
            parsed[kind].append((label, get_fhir_model_class(kind).model_validate(resource), full_url))
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
            report.refused.append((label, f"not a valid {kind}: {'.'.join(map(str, first['loc']))}: {first['msg']}"))
        except Exception as exc:  # noqa: BLE001  (the models can fail in other ways on hostile input)
            report.refused.append((label, f"not a valid {kind} ({type(exc).__name__})"))
    patients = _bundle_patients(parsed["Patient"])
    seen: dict[tuple[str, str, str], str] = {}
    work = [(kind, item) for kind in KINDS for item in parsed[kind]]
    for first in range(0, len(work), BATCH):
        with sessions.begin() as session:
            clinic = session.get(Clinic, clinic_id)
            region = region_of(clinic)
            for kind, (label, resource, _) in work[first:first + BATCH]:
                why = _write_one(session, clinic, kind, resource, patients, region, now, label, seen, report)
                if why:
                    report.refused.append((label, why))
    report.refused.sort(key=lambda refusal: int(refusal[0].split()[1]))  # in the file's order
    return report


def _bundle_patients(patients: list) -> dict[str, tuple[str, str]]:
    """Each of the bundle's Patients by its addresses (Patient/id, its entry's fullUrl)."""
    found: dict[str, tuple[str, str]] = {}
    for _, patient, full_url in patients:
        ident = _identifier(patient)
        if ident is not None:
            for address in (f"Patient/{patient.id}" if patient.id else None, full_url):
                if address:
                    found[address] = ident
    return found


def _write_one(session: Session, clinic: Clinic, kind: str, resource, patients, region: str, now: dt.datetime,
               label: str, seen: dict, report: FhirReport) -> str | None:
    """Write one resource; returns why it was refused, or None."""
    try:
        ident = _identifier(resource)
        if ident is not None:
            if (kind, *ident) in seen:
                return f"it has the same identifier as {seen[(kind, *ident)]}"
            seen[(kind, *ident)] = label.split(" (")[0]
        with session.begin_nested():
            written = _write(session, clinic, kind, resource, patients, region, now)
    except RecordKept as exc:
        report.kept.append((label, str(exc)))
        return None
    except (RecordConflict, FhirValueRefused) as exc:
        return str(exc)
    except RecordRefused as exc:
        return f"{exc.field}: {exc}"
    except SchemaRefused as exc:
        return "; ".join(f"{column}: {' '.join(map(str, messages))}"
                         for column, messages in sorted(exc.normalized_messages().items()))
    if written is None:
        report.count(report.skipped, f"{kind} not booked")
        return None
    report.count(report.created if written.created else report.updated if written.changed
                 else report.unchanged, kind)
    return None


class FhirValueRefused(IvrError):
    """A resource lacks what we need of it (an identifier, a patient, a phone); says what."""


def _identifier(resource) -> tuple[str, str] | None:
    """The identifier a resource is matched by: its usual one, else its official one, else its
    first not marked old; only one with a system (a bare value could be anyone's)."""
    identifiers = [i for i in (resource.identifier or []) if i.value and i.system and i.use != "old"]
    for use in ("usual", "official", None):
        chosen = next((i for i in identifiers if use is None or i.use == use), None)
        if chosen is not None:
            return chosen.system, chosen.value
    return None


def _write(session: Session, clinic: Clinic, kind: str, resource, patients: dict[str, tuple[str, str]],
           region: str, now: dt.datetime):
    ident = _identifier(resource)
    if ident is None:
        raise FhirValueRefused("it has no identifier with a system and a value to match it by")
    system, value = ident
    if len(value) > 200 or len(system) > 200:
        raise FhirValueRefused("its identifier is longer than 200 characters")
    if kind == "Patient":
        body = PatientIn().load(_patient_body(resource))
        return write_patient(session, clinic, value, body, "fhir", region, system=system)
    patient_system, patient_value = _patient_of(resource, patients)
    if kind == "Appointment":
        if APPOINTMENT_STATUS.get(resource.status, "") is None:
            return None  # proposed, pending, waitlisted: not booked, so nobody is reminded
        # (the schema checks the API's ids; a FHIR patient's identifier is checked as an identifier)
        body = AppointmentIn().load(_appointment_body(resource, clinic, "fhir"))
        return write_appointment(session, clinic.id, value, {**body, "patient": patient_value}, now, system=system,
                                 patient_system=patient_system)
    body = PrescriptionIn().load(_prescription_body(resource, "fhir"))
    return write_prescription(session, clinic, value, {**body, "patient": patient_value}, now, region,
                              system=system, patient_system=patient_system)


def _patient_body(patient) -> dict:
    """A FHIR Patient as the API's patient body."""
    names = [n for n in (patient.name or []) if n.use != "old"]
    name = next((n for n in names if n.use in ("official", "usual")), names[0] if names else None)
    phones = [t for t in (patient.telecom or []) if t.system in ("phone", "sms") and t.value and t.use != "old"]
    phone = next((t for t in phones if t.use == "mobile"), phones[0] if phones else None)
    given = [g for g in (name.given or []) if g] if name else []
    first, last = (given[0] if given else None), (name.family if name else None)
    if name is not None and not (first and last) and name.text and len(name.text.split()) > 1:
        first, last = name.text.split(maxsplit=1)  # a name given only as text: "Lucia Ortiz"
    if not (first and last):
        raise FhirValueRefused("it has no name with a given and a family name")
    if phone is None:
        raise FhirValueRefused("it has no phone number")
    body = {"first_name": first, "last_name": last, "phone": phone.value,
            "preferred_channel": "sms" if phone.system == "sms" else "voice"}
    # A partial date ("1946") cannot check who a caller is: the patient comes without one.
    if isinstance(patient.birthDate, dt.date):
        body["date_of_birth"] = patient.birthDate.isoformat()
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
    Patient one of its references names, else a reference typed Patient carrying an identifier."""
    references = ([p.actor for p in (resource.participant or []) if p.actor] if hasattr(resource, "participant")
                  else [resource.subject] if resource.subject else [])
    for reference in references:
        if reference.reference and reference.reference in patients:
            return patients[reference.reference]
    for reference in references:
        typed = reference.type == "Patient" or (reference.reference or "").startswith("Patient/")
        ident = reference.identifier
        if typed and ident is not None and ident.value and ident.system:
            return ident.system, ident.value
    raise FhirValueRefused("it names no patient of this bundle (a Patient reference, or a reference typed "
                           "Patient with the patient's identifier and its system)")


def _appointment_body(appointment, clinic: Clinic, patient: str) -> dict:
    """A FHIR Appointment as the API's appointment body: its practitioner's name, its location by
    name among the clinic's (else the clinic's first), its start."""
    if appointment.start is None:
        raise FhirValueRefused("it has no start")
    if not APPOINTMENT_STATUS.get(appointment.status):
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
                  "active": request.status in ACTIVE_PRESCRIPTION and not request.doNotPerform}
    dispense = request.dispenseRequest
    if dispense is not None and dispense.numberOfRepeatsAllowed is not None:
        body["refills_left"] = min(int(dispense.numberOfRepeatsAllowed), 99)
    supply = dispense and dispense.expectedSupplyDuration
    authored = request.authoredOn
    authored = authored.date() if isinstance(authored, dt.datetime) else authored
    if supply is not None and supply.value is not None and isinstance(authored, dt.date):
        per = DAYS_IN.get(supply.code or "") or DAYS_IN.get((supply.unit or "").lower())
        days = per * float(supply.value) if per else 0  # other units (hours, years): no due day
        if 0 < days <= 3660:
            try:
                body["refill_due_on"] = (authored + dt.timedelta(days=round(days))).isoformat()
            except OverflowError:
                pass  # a supply running out past year 9999: no due day
    return body
