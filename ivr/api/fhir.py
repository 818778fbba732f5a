"""FHIR R4 in: a Bundle or NDJSON export of Patient, Appointment and MedicationRequest, written
as `ivr import fhir` writes it."""

from __future__ import annotations

import uuid

from flask import Response, abort, g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from ivr.api import problems
from ivr.api.schemas import PageArgs
from ivr.api.tokens import requires
from ivr.imports.fhir_files import FhirRefused, import_resources, resources_of
from ivr.services import current_services

JSON_TYPES = ("application/fhir+json", "application/json")
NDJSON_TYPES = ("application/fhir+ndjson", "application/x-ndjson", "application/ndjson")

bp = Blueprint("fhir", __name__, description="FHIR R4 records in: Patient, Appointment, MedicationRequest")
bp.register_error_handler(Exception, problems.unexpected)


class Placed(Schema):
    at = fields.String(metadata={"description": "which entry or line, and the resource's type and id"})
    why = fields.String()


class FhirBundle(Schema):
    """A FHIR Bundle (its full form is FHIR's own)."""

    class Meta:
        unknown = "include"

    resourceType = fields.String()
    type = fields.String()
    entry = fields.List(fields.Dict())
    link = fields.List(fields.Dict())


class FhirImport(Schema):
    created = fields.Dict(keys=fields.String(), values=fields.Integer())
    updated = fields.Dict(keys=fields.String(), values=fields.Integer())
    unchanged = fields.Dict(keys=fields.String(), values=fields.Integer())
    refused = fields.List(fields.Nested(Placed))
    kept = fields.List(fields.Nested(Placed), metadata={"description": "visits cancelled or missed here that the "
                                                                       "bundle would book again: left as they are"})
    skipped = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "resources of other types, not imported"})


@bp.route("/fhir", methods=["POST"])
@requires("records:write")
@bp.doc(requestBody={"required": True, "content": {
    "application/fhir+json": {"schema": {"type": "object", "description": "a Bundle, or one resource"}},
    "application/fhir+ndjson": {"schema": {"type": "string", "description": "one resource a line"}}}})
@bp.response(200, FhirImport, description="what was written; a bad resource is listed and the rest written")
@bp.alt_response(400, description="not FHIR JSON")
@bp.alt_response(415, description="neither FHIR JSON nor NDJSON")
def post_fhir():
    """Write a FHIR R4 Bundle's (or NDJSON export's) patients, appointments and medication requests,
    matched by identifier system and value."""
    kind = request.mimetype
    if kind not in JSON_TYPES + NDJSON_TYPES:
        abort(problems.problem(415, f"send {JSON_TYPES[0]} (a Bundle) or {NDJSON_TYPES[0]} (one resource a line)"))
    try:
        found = resources_of(request.get_data().decode("utf-8"), ndjson=kind in NDJSON_TYPES)
    except UnicodeDecodeError:
        abort(problems.problem(400, "the body is not UTF-8"))
    except FhirRefused as exc:
        abort(problems.problem(400, str(exc)))
    return import_resources(current_services().sessions, g.caller.clinic_id, found).as_dict()


# The namespace of the Communications' fullUrls (urn:uuid, one per contact, the same every time).
CONTACTS = uuid.UUID("6f1c8f52-8a8e-4d3e-9a51-1c0ad6f0c6a1")
# How a contact reached the patient, as FHIR says it (v3 ParticipationMode).
MEDIUM = {"voice": ("PHONE", "telephone"), "sms": ("WRITTEN", "written")}
# A contact's state as a Communication's status.
COMMUNICATION_STATUS = {"planned": "preparation", "dialing": "in-progress", "placed": "in-progress",
                        "completed": "completed", "unreached": "not-done", "failed": "not-done",
                        "skipped": "not-done", "uncertain": "unknown"}


@bp.route("/fhir/Communication", methods=["GET"])
@requires("outcomes:read")
@bp.arguments(PageArgs, location="query")
@bp.response(200, FhirBundle, content_type="application/fhir+json",
             description="a searchset Bundle of Communication resources; its `next` link carries the cursor")
def communications(args: dict):
    """The clinic's contacts as FHIR Communications (what /outcomes lists), oldest change first."""
    from fhir.resources.R4B.bundle import Bundle

    from ivr.api.outcomes import outcome_items
    from ivr.db import read_only
    from ivr.external_refs import identifiers

    clinic_id = g.caller.clinic_id
    with read_only(current_services().sessions()) as session:
        items, cursor = outcome_items(session, clinic_id, args)
        patients = identifiers(session, clinic_id, "patient", (i["patient_id"] for i in items))
        appointments = identifiers(session, clinic_id, "appointment", (i["appointment_id"] for i in items))
        prescriptions = identifiers(session, clinic_id, "prescription", (i["prescription_id"] for i in items))
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid5(CONTACTS, str(item['id']))}",
                "resource": _communication(item, patients, appointments, prescriptions)} for item in items]
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if cursor:
        bundle["link"] = [{"relation": "next", "url": request.base_url + f"?cursor={cursor}&limit={args['limit']}"}]
    # Checked by FHIR's own models on its way out; sent as FHIR's JSON media type.
    return Response(Bundle.model_validate(bundle).model_dump_json(exclude_none=True), mimetype="application/fhir+json")


def _reference(kind: str, identifier: tuple[str, str] | None, ours: int) -> dict:
    """A reference by the clinic's identifier for the record, else by ours (urn:ivr:<kind>)."""
    system, value = identifier or (f"urn:ivr:{kind.lower()}", str(ours))
    return {"type": kind, "identifier": {"value": value, **({"system": system} if system else {})}}


def _communication(item: dict, patients, appointments, prescriptions) -> dict:
    """One contact as a Communication: to whom, about what, how, when, and what came of it."""
    code, display = MEDIUM.get(item["channel"], MEDIUM["voice"])
    about = ([_reference("Appointment", appointments.get(item["appointment_id"]), item["appointment_id"])]
             if item["appointment_id"] else
             [_reference("MedicationRequest", prescriptions.get(item["prescription_id"]), item["prescription_id"])])
    resource = {"resourceType": "Communication", "id": str(item["id"]),
                "status": COMMUNICATION_STATUS.get(item["status"], "unknown"),
                "subject": _reference("Patient", patients.get(item["patient_id"]), item["patient_id"]), "about": about,
                "medium": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                                        "code": code, "display": display}],
                            "text": "telephone call" if item["channel"] == "voice" else "text message (SMS)"}],
                "topic": {"text": item["step"]}}
    if item["dispatched_at"] is not None:
        resource["sent"] = item["dispatched_at"].isoformat()
    if item["result"]:  # what the patient did (confirmed, ...), as a note: not what was said
        resource["note"] = [{"text": f"outcome: {item['result']}"}]
    return resource
