"""A CSV file of patients, appointments or prescriptions, written by the clinic's own ids: each
row checked as the API checks a request; a bad row is reported with its line and reason and
the rest are written; the same file again changes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.api.schemas import EXTERNAL_ID, AppointmentIn, PatientIn, PrescriptionIn
from ivr.clinic_records import (KEEP_OURS, RecordConflict, RecordKept, RecordRefused, name, patient_values, phone,
                                region_of, update_patient, write_appointment, write_patient, write_prescription)
from ivr.errors import IvrError
from ivr.models import Appointment, Clinic, ExternalRef, Location, Patient, Prescription, utcnow

KINDS = ("patients", "appointments", "prescriptions")
SCHEMAS: dict[str, type[Schema]] = {"patients": PatientIn, "appointments": AppointmentIn,
                                    "prescriptions": PrescriptionIn}
# Other names systems give the same columns (after lower case, and _ for spaces and hyphens).
ALIASES = {"id": "external_id", "patient_id": "patient", "patient_external_id": "patient", "mrn": "external_id",
           "dob": "date_of_birth", "birth_date": "date_of_birth", "birthdate": "date_of_birth",
           "phone_number": "phone", "mobile": "phone", "cell": "phone", "given_name": "first_name",
           "family_name": "last_name", "surname": "last_name", "start": "starts_at", "starts": "starts_at",
           "start_time": "starts_at", "provider": "provider_name", "type": "appointment_type",
           "location": "location_id", "drug": "medication", "due": "refill_due_on", "refills": "refills_left",
           "pharmacy": "pharmacy_name"}
WHOLE_NUMBERS = ("location_id", "refills_left")
BATCH = 500  # rows written per transaction


class ImportRefused(IvrError):
    """The whole file cannot be read (its encoding, its header): nothing was written."""


@dataclass
class ImportReport:
    """What importing one file did."""

    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    kept: list[tuple[int, str]] = field(default_factory=list)     # (line, why): left as the patient left it
    ignored_columns: tuple[str, ...] = ()

    def summary(self) -> str:
        text = (f"{self.kind}: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{len(self.refused)} refused")
        if self.kept:
            text += f", {len(self.kept)} kept as the patient or staff left them"
        if self.ignored_columns:
            text += f" (columns ignored: {', '.join(self.ignored_columns)})"
        return text


def read_rows(path: Path, kind: str) -> tuple[list[tuple[int, dict[str, str] | str]], tuple[str, ...],
                                              frozenset[str]]:
    """The file's rows as (line, {column: value}) under our column names, or (line, why it is
    refused); the columns ignored; and the columns the file has. ImportRefused when it is not
    UTF-8, not CSV, or its header lacks a column every row needs or names one twice."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(f"{path.name} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
                            "save it as 'CSV UTF-8' and import it again; nothing was imported") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        names = [ALIASES.get(key, key) for key in (re.sub(r"[\s-]+", "_", h.strip().lower()) for h in header)]
        known = set(SCHEMAS[kind]().fields) | {"external_id"}
        required = {n for n, f in SCHEMAS[kind]().fields.items() if f.required} | {"external_id"}
        missing = sorted(required - set(names))
        if missing:
            raise ImportRefused(f"{path.name} has no column {', '.join(missing)} (a {kind} file needs "
                                f"{', '.join(sorted(required))}); nothing was imported")
        twice = sorted({n for n in names if n in known and names.count(n) > 1})
        if twice:
            columns = [h for h, n in zip(header, names) if n == twice[0]]
            raise ImportRefused(f"{path.name}: the columns {' and '.join(repr(c) for c in columns)} both mean "
                                f"{twice[0]}: keep one; nothing was imported")
        ignored = tuple(h for h, n in zip(header, names) if n not in known)
        rows: list[tuple[int, dict[str, str] | str]] = []
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(names) and any(cell.strip() for cell in cells[len(names):]):
                rows.append((start, f"{len(cells)} cells where the header has {len(names)} (a comma not in "
                                    "quotes?)"))
                continue
            rows.append((start, {n: c.strip() for n, c in zip(names, cells) if n in known and c.strip()}))
    except StopIteration:
        raise ImportRefused(f"{path.name} is empty; nothing was imported") from None
    except csv.Error as exc:
        raise ImportRefused(f"{path.name} line {reader.line_num}: {exc}; nothing was imported") from None
    return rows, ignored, frozenset(n for n in names if n in known)


def import_file(sessions: sessionmaker[Session], clinic_id: int, kind: str, path: Path,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Write every good row of the file; a bad one is kept in the report with its line."""
    rows, ignored, columns = read_rows(path, kind)
    report, seen = ImportReport(kind, ignored_columns=ignored), {}
    with sessions() as session:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise ImportRefused(f"no clinic with id {clinic_id}")
        region, zones = region_of(clinic), _location_zones(session, clinic)
        zones[None] = ZoneInfo(clinic.timezone)
        # Every id the clinic has of this kind (and of its patients), read once: a lookup per batch
        # against a table the import is growing leaves the planner's row counts behind.
        model, ref_kind = _MODELS[kind]
        known = _all_refs(session, clinic_id, ref_kind)
        patients = known if kind == "patients" else _all_refs(session, clinic_id, "patient")
    for first in range(0, len(rows), BATCH):
        batch = rows[first:first + BATCH]
        checked = []
        for line, values in batch:
            result = values if isinstance(values, str) else _checked(kind, values, zones, seen, line)
            if isinstance(result, str):
                report.refused.append((line, result))
            else:
                checked.append((line, *result))
        with sessions.begin() as session:
            _write_batch(session, session.get(Clinic, clinic_id), kind, checked, region, report, columns, known,
                         patients)
        if progress:
            progress(len(batch))
    report.refused.sort()
    return report


def _checked(kind: str, values: dict[str, str], zones: dict[int, ZoneInfo], seen: dict[str, int],
             line: int) -> tuple[str, dict] | str:
    """The row's id and values as the schema loads them, or why it is refused."""
    external_id = values.pop("external_id", "")
    if not re.fullmatch(EXTERNAL_ID["pattern"].strip("^$"), external_id):
        return f"external_id: missing or not an id ({EXTERNAL_ID['description']})"
    if external_id in seen:
        return f"external_id {external_id!r} is on line {seen[external_id]} already"
    try:
        loaded = SCHEMAS[kind]().load(_typed(values, zones))
    except RowRefused as exc:
        return str(exc)
    except ValidationError as exc:
        return "; ".join(f"{column}: {' '.join(map(str, messages))}"
                         for column, messages in sorted(exc.normalized_messages().items()))
    seen[external_id] = line
    return external_id, loaded


_MODELS = {"patients": (Patient, "patient"), "appointments": (Appointment, "appointment"),
           "prescriptions": (Prescription, "prescription")}


def _all_refs(session: Session, clinic_id: int, ref_kind: str) -> dict[str, int]:
    """The clinic's ids of one kind (the scheduling system's) and our rows they name."""
    return dict(session.execute(select(ExternalRef.value, ExternalRef.row_id).where(
        ExternalRef.clinic_id == clinic_id, ExternalRef.kind == ref_kind, ExternalRef.system == "")).all())


def _write_batch(session: Session, clinic: Clinic, kind: str, checked: list[tuple[int, str, dict]], region: str,
                 report: ImportReport, columns: frozenset[str], known: dict[str, int],
                 patients_by_id: dict[str, int]) -> None:
    """Write a batch: new records in one insert each for them and their ids, patients already
    here compared in memory, other changes one by one through the staff's changes. A column the
    file does not have leaves what is stored (a stopped prescription stays stopped)."""
    model, ref_kind = _MODELS[kind]
    existing = {external_id: known[external_id] for _, external_id, _ in checked if external_id in known}
    now, fresh, one_by_one = utcnow(), [], []
    stored = {row.id: row for row in session.scalars(select(model).where(model.id.in_(existing.values())))}
    absent = [f for f in SCHEMAS[kind]().fields if f not in columns]
    for line, external_id, body in checked:
        if external_id in existing:
            body = _keeping(body, absent, stored[existing[external_id]])
        try:
            if kind == "patients":
                values, consent = patient_values(body, region)
                values.update(clinic_id=clinic.id, consent_at=consent, consent_source=consent and "import")
            elif kind == "appointments" and body["status"] == "no_show":
                one_by_one.append((line, external_id, body))
                continue
            else:
                values = _new_values(kind, body, clinic, region, patients_by_id, now)
        except RecordRefused as exc:
            report.refused.append((line, f"{exc.field}: {exc}"))
            continue
        if kind != "patients" and external_id in existing:
            if _same(stored[existing[external_id]], values, body):
                report.unchanged += 1
            else:  # a change: through the staff's changes, one by one
                one_by_one.append((line, external_id, body))
        elif external_id in existing:
            one_by_one.append((line, external_id, values))
        else:
            fresh.append((line, external_id, values))
    if fresh and not _inserted(session, clinic.id, model, ref_kind, fresh, now, known):
        # Another writer made some of these ids meanwhile: one by one, each finding its own.
        one_by_one += [(line, external_id, body) for line, external_id, body in checked
                       if external_id in {e for _, e, _ in fresh}]
        fresh = []
    report.created += len(fresh)
    if kind == "patients":
        _update_patients(session, existing, [r for r in one_by_one if r[1] in existing], report)
        one_by_one = [r for r in one_by_one if r[1] not in existing]
    for line, external_id, body in one_by_one:
        why = _write_one(session, clinic, kind, external_id, body, region, report, line)
        if why:
            report.refused.append((line, why))


def _keeping(body: dict, absent: list[str], row) -> dict:
    """The row's body with what is stored in place of the file's missing columns."""
    body = dict(body)
    for column in absent:
        if column == "refills_left" or column == "consent_at":
            body.pop(column, None)  # left out: as stored (refills count down on a fill)
        elif hasattr(row, column):
            body[column] = getattr(row, column)
    return body


def _same(row, values: dict, body: dict) -> bool:
    """Whether writing `values` would leave a stored appointment or prescription as it is (a
    `booked` resent for a visit the patient confirmed or asked to move leaves it, too)."""
    for key, value in values.items():
        if key == "status_changed_at" or (key == "refills_left" and "refills_left" not in body):
            continue
        if key == "status" and (value, row.status) in KEEP_OURS:
            continue
        if getattr(row, key) != value:
            return False
    return True


def _new_values(kind: str, body: dict, clinic: Clinic, region: str, patients_by_id: dict[str, int],
                now: dt.datetime) -> dict:
    """A new appointment's or prescription's column values, checked as clinic_records checks them."""
    patient_id = patients_by_id.get(body["patient"])
    if patient_id is None:
        raise RecordRefused("patient", "no patient of the clinic has that id: send the patient first")
    if kind == "appointments":
        if body["location_id"] not in {location.id for location in clinic.locations}:
            raise RecordRefused("location_id", f"the clinic has no location {body['location_id']}")
        return {"patient_id": patient_id, "location_id": body["location_id"],
                "provider_name": name(body["provider_name"], "provider_name"),
                "provider_title": body.get("provider_title"), "appointment_type": body.get("appointment_type"),
                "starts_at": body["starts_at"].astimezone(dt.timezone.utc), "status": body["status"],
                "status_changed_at": now}
    values = {**body, "patient_id": patient_id, "medication": name(body["medication"], "medication"),
              "pharmacy_name": body.get("pharmacy_name") and name(body["pharmacy_name"], "pharmacy_name"),
              "pharmacy_phone": body.get("pharmacy_phone") and phone(body["pharmacy_phone"], region,
                                                                     "pharmacy_phone")}
    del values["patient"]
    return values


def _inserted(session: Session, clinic_id: int, model, ref_kind: str, fresh: list, now: dt.datetime,
              known: dict[str, int]) -> bool:
    """Insert new records and their ids in two statements, and remember the ids; False (and
    nothing written) when an id was taken meanwhile."""
    try:
        with session.begin_nested():
            ids = session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True),
                                  [values for _, _, values in fresh]).all()
            session.execute(insert(ExternalRef), [
                {"clinic_id": clinic_id, "kind": ref_kind, "system": "", "value": external_id, "row_id": row,
                 "created_at": now} for (_, external_id, _), row in zip(fresh, ids)])
    except IntegrityError:
        return False
    known.update((external_id, row) for (_, external_id, _), row in zip(fresh, ids))
    return True


def _update_patients(session: Session, existing: dict[str, int], rows: list, report: ImportReport) -> None:
    """Patients already here, read in one query and changed where the file differs."""
    found = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(
        [existing[external_id] for _, external_id, _ in rows])).with_for_update(key_share=True))}
    for _, external_id, values in rows:
        values = dict(values)
        consent, _source = values.pop("consent_at", None), values.pop("consent_source", None)
        values.pop("clinic_id")
        if update_patient(found[existing[external_id]], values, consent, "import"):
            report.updated += 1
        else:
            report.unchanged += 1


def _write_one(session: Session, clinic: Clinic, kind: str, external_id: str, body: dict, region: str,
               report: ImportReport, line: int) -> str | None:
    """Write one row through clinic_records; returns why it was refused, or None."""
    now = utcnow()
    try:
        with session.begin_nested():
            if kind == "patients":
                written = write_patient(session, clinic, external_id, body, "import", region)
            elif kind == "appointments":
                written = write_appointment(session, clinic.id, external_id, body, now)
            else:
                written = write_prescription(session, clinic, external_id, body, now, region)
    except RecordRefused as exc:
        return f"{exc.field}: {exc}"
    except RecordKept as exc:
        report.kept.append((line, str(exc)))
        return None
    except RecordConflict as exc:
        return str(exc)
    except IntegrityError:
        return "the database refused it (it conflicts with a record already stored)"
    if written.created:
        report.created += 1
    elif written.changed:
        report.updated += 1
    else:
        report.unchanged += 1
    return None


class RowRefused(ValueError):
    """A cell cannot mean what the file needs; the message says which and why."""


def _typed(values: dict[str, str], zones: dict[int | None, ZoneInfo]) -> dict:
    """Cells as the schema takes them: whole numbers as numbers; a visit's time without an
    offset read on its location's clock, a consent's on the clinic's."""
    body: dict = dict(values)
    for column in WHOLE_NUMBERS:
        value = body.get(column)
        if value is not None and value.isascii() and value.isdigit() and len(value) <= 18:
            body[column] = int(value)
    location = body.get("location_id")
    for column, zone in (("starts_at", zones.get(location) if isinstance(location, int) else None),
                         ("consent_at", zones[None])):
        if body.get(column) and zone is not None:
            body[column] = _on_clock(column, body[column], zone)
    return body


def _on_clock(column: str, value: str, zone: ZoneInfo) -> str:
    """A date and time without an offset, on `zone`'s clock, with its offset; refused when it is a
    date alone, or a time the clocks skip or pass twice that day."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value  # the schema says what is wrong with it
    if moment.tzinfo is not None:
        return value
    if not re.search(r"\d[T ]\d", value):
        raise RowRefused(f"{column}: a date and a time are needed, not a date alone")
    first, second = moment.replace(tzinfo=zone, fold=0), moment.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        skipped = first.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) != moment
        raise RowRefused(f"{column}: {moment:%Y-%m-%d %H:%M} " + (
            "does not happen on that day's clock (it is skipped when clocks go forward)" if skipped
            else "happens twice on that day's clock (clocks go back)") + ": give its UTC offset")
    return first.isoformat()


def _location_zones(session: Session, clinic: Clinic) -> dict[int | None, ZoneInfo]:
    """Each of the clinic's locations' clocks (its own, else the clinic's)."""
    return {location.id: ZoneInfo(location.timezone or clinic.timezone)
            for location in session.query(Location).filter(Location.clinic_id == clinic.id)}
