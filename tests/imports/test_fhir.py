"""`ivr import fhir` and POST /api/v1/fhir: a FHIR R4 bundle's patients, appointments and
medication requests, matched by identifier, reminded by the next campaign run."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select, update

from ivr.models import Appointment, ExternalRef, Patient, Prescription, Touch, utcnow
from outbound import campaigns
from tests.api.conftest import make_token
from tests.api.test_records import ANNA

MRN = "urn:oid:2.16.840.1.113883.19.5"
VISITS = "https://ehr.example.org/appointments"
ORDERS = "https://ehr.example.org/orders"


def bundle(start: dt.datetime) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:9b0c2c4e-0000-4000-8000-000000000001", "resource": {
            "resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "http://hospital.example/other", "value": "X9"},
                           {"use": "usual", "system": MRN, "value": "12345"}],
            "name": [{"use": "official", "family": "Ortiz", "given": ["Lucia", "Maria"]}],
            "telecom": [{"system": "phone", "value": "(212) 555-0155", "use": "home"},
                        {"system": "phone", "value": "212 555 0156", "use": "mobile"}],
            "birthDate": "1946-05-17",
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-US"}]},
                               "preferred": True}]}},
        {"resource": {"resourceType": "Patient", "id": "p2", "identifier": [{"system": MRN, "value": "67890"}],
                      "name": [{"family": "Nophone", "given": ["Ned"]}]}},
        {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                      "code": {"text": "weight"}}},
        {"resource": {
            "resourceType": "Appointment", "id": "a1", "status": "booked",
            "identifier": [{"system": VISITS, "value": "A-77"}],
            "appointmentType": {"text": "follow-up"},
            "start": start.isoformat(), "end": (start + dt.timedelta(minutes=20)).isoformat(),
            "participant": [
                {"actor": {"reference": "urn:uuid:9b0c2c4e-0000-4000-8000-000000000001"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/pr1", "display": "Amara Patel"}, "status": "accepted"},
                {"actor": {"reference": "Location/l1", "display": "Main Street"}, "status": "accepted"}]}},
        {"resource": {"resourceType": "Appointment", "id": "a2", "status": "booked", "start": "tomorrow",
                      "identifier": [{"system": VISITS, "value": "A-78"}], "participant": []}},
        {"resource": {
            "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
            "identifier": [{"system": ORDERS, "value": "RX-5"}],
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "860975", "display": "metformin"}]},
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-12-01",
            "dispenseRequest": {"numberOfRepeatsAllowed": 3,
                                "expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"}}}}]}


def write(tmp_path, document) -> str:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_a_bundle_makes_patients_and_visits_the_campaign_reminds(runner, client, sessions, demo, tmp_path):
    start = (utcnow() + dt.timedelta(days=2)).replace(microsecond=0)
    path = write(tmp_path, bundle(start))
    result = runner.invoke(args=["import", "fhir", path, "--clinic", "1"])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("Patient: 1 created, 0 updated, 0 unchanged; Appointment: 1 created, 0 updated, 0 unchanged; "
                        "MedicationRequest: 1 created, 0 updated, 0 unchanged; 2 refused (not imported: 1 Observation)")
    assert lines[1] == "entry 2 (Patient): it has no phone number"
    assert lines[2].startswith("entry 5 (Appointment): not a valid Appointment: start")
    with sessions() as session:
        lucia = session.scalar(select(Patient).where(Patient.last_name == "Ortiz"))
        visit = session.scalar(select(Appointment).where(Appointment.patient_id == lucia.id))
        drug = session.scalar(select(Prescription).where(Prescription.patient_id == lucia.id))
        refs = sorted(session.execute(select(ExternalRef.kind, ExternalRef.system, ExternalRef.value).where(
            ExternalRef.row_id.in_([lucia.id, visit.id, drug.id]))).all())
    assert (lucia.first_name, lucia.phone, lucia.language, lucia.date_of_birth) == (
        "Lucia", "+12125550156", "es", dt.date(1946, 5, 17))
    assert (visit.provider_name, visit.appointment_type, visit.status, visit.starts_at) == (
        "Amara Patel", "follow-up", "booked", start)
    assert (drug.medication, drug.refills_left, drug.refill_due_on, drug.active) == (
        "metformin", 3, dt.date(2026, 12, 31), True)
    assert ("appointment", VISITS, "A-77") in refs and ("patient", MRN, "12345") in refs
    assert ("prescription", ORDERS, "RX-5") in refs
    now = utcnow()
    with sessions.begin() as session:
        campaigns.plan_campaigns(session, now, now + dt.timedelta(days=3), write=True)
    with sessions() as session:
        assert session.scalar(select(Touch.step).where(Touch.appointment_id == visit.id)) == "reminder"
    # Read back as FHIR: the reminder planned for the visit, a Communication naming it and its patient.
    with sessions.begin() as session:
        session.execute(update(Touch).values(updated_at=utcnow() - dt.timedelta(minutes=1)))
    token = make_token(sessions, 1, scopes=["outcomes:read"])
    page = client.get("/api/v1/fhir/Communication", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("application/fhir+json")
    document = page.get_json()
    Bundle.model_validate(document)  # valid FHIR, by the same models
    ours = [e["resource"] for e in document["entry"]
            if e["resource"]["subject"].get("identifier", {}).get("value") == "12345"]
    assert len(ours) == 1 and ours[0]["resourceType"] == "Communication"
    assert ours[0]["status"] == "preparation" and ours[0]["topic"] == {"text": "reminder"}
    assert ours[0]["subject"]["identifier"] == {"system": MRN, "value": "12345"}
    assert ours[0]["about"] == [{"type": "Appointment", "identifier": {"system": VISITS, "value": "A-77"}}]
    assert ours[0]["medium"][0]["coding"][0]["code"] == "PHONE"
    again = runner.invoke(args=["import", "fhir", path, "--clinic", "1"])
    assert again.stdout.splitlines()[0].startswith("Patient: 0 created, 0 updated, 1 unchanged; "
                                                   "Appointment: 0 created, 0 updated, 1 unchanged; "
                                                   "MedicationRequest: 0 created, 0 updated, 1 unchanged")


def test_ndjson_and_the_api_endpoint(client, sessions, demo, tmp_path):
    start = (utcnow() + dt.timedelta(days=2)).replace(microsecond=0)
    resources = [e["resource"] for e in bundle(start)["entry"] if e["resource"]["resourceType"] == "Patient"]
    ndjson = "\n".join(json.dumps(r) for r in resources) + "\n"
    token = make_token(sessions, 1)
    answer = client.post("/api/v1/fhir", data=ndjson, headers={"Authorization": f"Bearer {token}",
                                                               "Content-Type": "application/fhir+ndjson"})
    assert answer.status_code == 200, answer.data
    report = answer.get_json()
    assert report["created"] == {"Patient": 1} and report["refused"] == [
        {"at": "line 2 (Patient)", "why": "it has no phone number"}]
    bad = client.post("/api/v1/fhir", data="{not json", headers={"Authorization": f"Bearer {token}",
                                                                "Content-Type": "application/fhir+json"})
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"
    reader = make_token(sessions, 1, scopes=["outcomes:read"])
    assert client.post("/api/v1/fhir", data=ndjson, headers={"Authorization": f"Bearer {reader}"}).status_code == 403


def test_files_that_are_not_fhir_json(runner, demo, tmp_path):
    for text, message in (("hello", "not FHIR JSON"), ("\xff", "not FHIR JSON")):
        path = tmp_path / "x.json"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(args=["import", "fhir", str(path), "--clinic", "1"])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    latin = tmp_path / "latin.json"
    latin.write_bytes("{\"resourceType\": \"Patient\", \"name\": \"Jos\xe9\"}".encode("latin-1"))
    result = runner.invoke(args=["import", "fhir", str(latin), "--clinic", "1"])
    assert result.exit_code == 1 and "is not UTF-8 JSON" in result.output


def test_what_a_bundle_cannot_make_anyone_else(client, sessions, demo, api_put_patient):
    """An identifier without a system is refused (the API's ids have none: it would overwrite
    them); a participant that is not the patient is not taken for one; the same identifier twice
    is refused the second time; proposed visits are not booked; what crashes models is refused."""
    token = make_token(sessions, 1)
    start = (utcnow() + dt.timedelta(days=3)).replace(microsecond=0).isoformat()
    patient = {"resourceType": "Patient", "name": [{"text": "Quinn Adams"}], "birthDate": "1950",
               "telecom": [{"system": "sms", "value": "2125550160"}],
               "identifier": [{"system": MRN, "value": "Q-1"}]}
    document = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {**patient, "identifier": [{"value": "P-1"}]}},
        {"resource": {**patient, "id": "q"}},
        {"resource": {**patient, "name": [{"family": "Twice", "given": ["Other"]}]}},
        {"resource": {"resourceType": "Appointment", "status": "booked", "start": start,
                      "identifier": [{"system": VISITS, "value": "A-9"}],
                      "participant": [{"actor": {"identifier": {"system": MRN, "value": "P-1"}, "display": "Dr"}, "status": "accepted"},
                                      {"actor": {"reference": "Patient/q"}, "status": "accepted"},
                                      {"actor": {"reference": "Practitioner/x", "display": "Amara Patel"}, "status": "accepted"}]}},
        {"resource": {"resourceType": "Appointment", "status": "proposed", "start": start,
                      "identifier": [{"system": VISITS, "value": "A-10"}],
                      "participant": [{"actor": {"reference": "Patient/q"}, "status": "accepted"},
                                      {"actor": {"reference": "Practitioner/x", "display": "Amara Patel"}, "status": "accepted"}]}},
        {"resource": {"resourceType": "Patient", "contained": [{"resourceType": "Nonexistent"}]}},
        None]}
    answer = client.post("/api/v1/fhir", json=document, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.data
    report = answer.get_json()
    assert report["created"] == {"Patient": 1, "Appointment": 1}, report
    assert report["skipped"] == {"Appointment not booked": 1, "entry without a resource": 1}
    assert [r["at"] for r in report["refused"]] == ["entry 1 (Patient)", "entry 3 (Patient)", "entry 6 (Patient)"]
    assert report["refused"][0]["why"] == "it has no identifier with a system and a value to match it by"
    assert report["refused"][1]["why"] == "it has the same identifier as entry 2"
    with sessions() as session:
        anna = session.scalar(select(Patient).where(Patient.first_name == "Anna"))
        quinn = session.scalar(select(Patient).where(Patient.last_name == "Adams"))
        visit = session.scalar(select(Appointment).where(Appointment.provider_name == "Amara Patel",
                                                         Appointment.patient_id == quinn.id))
    assert (anna.last_name, anna.phone) == ("Berg", "+12125550199")  # the API's P-1, untouched
    assert (quinn.first_name, quinn.date_of_birth, quinn.preferred_channel) == ("Quinn", None, "sms")
    assert visit is not None  # booked for Quinn, not for whoever P-1 is
    for body, kind, status in (("{not json", "application/fhir+json", 400), ("x=1", "text/plain", 415),
                               ("[" * 100_000, "application/fhir+json", 400)):
        bad = client.post("/api/v1/fhir", data=body, headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": kind})
        assert bad.status_code == status and bad.headers["Content-Type"] == "application/problem+json"


@pytest.fixture
def api_put_patient(client, sessions, demo):
    """The scheduling system's patient P-1 (Anna Berg), through the API."""
    token = make_token(sessions, 1)
    assert client.put("/api/v1/patients/P-1", json=ANNA, headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 201
