"""Patients, appointments and prescriptions through the API, as a scheduling system sends them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from ivr.models import Appointment, ExternalRef, Patient, Prescription, Touch, utcnow
from outbound import campaigns
from tests.api.conftest import make_token

ANNA = {"first_name": "Anna", "last_name": "Berg", "phone": "(212) 555-0199", "date_of_birth": "1948-03-04",
        "language": "es", "preferred_channel": "voice"}


def visit(patient="P-1", days=5, **changes) -> dict:
    starts = (utcnow() + dt.timedelta(days=days)).replace(hour=15, minute=0, second=0, microsecond=0)
    return {"patient": patient, "location_id": changes.pop("location_id", None), "provider_name": "Amara Patel",
            "provider_title": "doctor", "starts_at": starts.isoformat(), **changes}


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def problem_errors(response) -> dict:
    assert response.headers["Content-Type"] == "application/problem+json", response.data
    body = response.get_json(force=True)
    assert body["status"] == response.status_code and body["type"] == "about:blank" and body["title"]
    return body.get("errors", {}).get("json", {})


def test_a_patient_is_created_once_and_the_same_put_changes_nothing(api, sessions):
    first = api.put("/patients/P-1", ANNA)
    assert first.status_code == 201
    body = first.get_json()
    assert body["external_id"] == "P-1" and body["phone"] == "+12125550199" and body["language"] == "es"
    assert body["date_of_birth"] == "1948-03-04" and body["opted_out"] is False
    patients = count(sessions, Patient)
    again = api.put("/patients/P-1", ANNA)
    assert again.status_code == 200 and again.get_json() == body
    assert count(sessions, Patient) == patients
    changed = api.put("/patients/P-1", {**ANNA, "phone": "+1 212 555 0100", "preferred_channel": "sms"})
    assert changed.status_code == 200 and changed.get_json()["phone"] == "+12125550100"
    assert api.get("/patients/P-1").get_json() == {**body, "phone": "+12125550100", "preferred_channel": "sms"}
    with sessions() as session:
        patient = session.get(Patient, body["id"])
        assert (patient.clinic_id, patient.phone, patient.preferred_channel) == (api.clinic_id, "+12125550100", "sms")


def test_bad_patients_are_refused_with_the_field_named_and_nothing_stored(api, sessions):
    before = count(sessions, Patient)
    cases = [({k: v for k, v in ANNA.items() if k != "last_name"}, "last_name"),
             ({**ANNA, "phone": "555"}, "phone"),
             ({**ANNA, "phone": "not a number"}, "phone"),
             ({**ANNA, "date_of_birth": (utcnow() + dt.timedelta(days=2)).date().isoformat()}, "date_of_birth"),
             ({**ANNA, "first_name": "\x00\x01 "}, "first_name"),
             ({**ANNA, "language": "xx"}, "language"),
             ({**ANNA, "timezone": "Mars/Olympus"}, "timezone"),
             ({**ANNA, "ssn": "123"}, "ssn")]
    for body, field in cases:
        response = api.put("/patients/P-1", body)
        assert response.status_code == 422, (field, response.data)
        assert field in problem_errors(response), (field, response.get_json())
    assert count(sessions, Patient) == before


def test_ids_outside_the_documented_form_are_not_found(api, client):
    for path in ("/patients/a%20b", "/patients/a%00b", "/patients/" + "x" * 65, "/patients/%C3%A9"):
        response = api.put(path, ANNA)
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/problem+json"
    not_json = client.put("/api/v1/patients/P-1", data="first_name=Anna", headers=api._headers(),
                          content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 422 or not_json.status_code == 415


def test_a_token_sees_only_its_own_clinic(api, other_api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    assert other_api.get("/patients/P-1").status_code == 404
    theirs = other_api.put("/patients/P-1", {**ANNA, "first_name": "Other"})
    assert theirs.status_code == 201 and theirs.get_json()["id"] != api.get("/patients/P-1").get_json()["id"]
    assert api.get("/patients/P-1").get_json()["first_name"] == "Anna"
    # Another clinic's patient and location cannot be booked.
    assert "patient" in problem_errors(other_api.put("/appointments/A-1", visit("P-2", location_id=other_api.location_id)))
    assert "location_id" in problem_errors(other_api.put("/appointments/A-1", visit(location_id=api.location_id)))
    with sessions() as session:
        owners = session.execute(select(ExternalRef.clinic_id, Patient.clinic_id).join(
            Patient, Patient.id == ExternalRef.row_id).where(ExternalRef.kind == "patient")).all()
    assert sorted(owners) == sorted([(api.clinic_id, api.clinic_id), (other_api.clinic_id, other_api.clinic_id)])


def test_tokens_are_checked_and_scoped(api, client, sessions, runner):
    anonymous = client.get("/api/v1/patients/P-1")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    forged = client.get("/api/v1/patients/P-1", headers={"Authorization": "Bearer ivr_forged"})
    assert forged.status_code == 401
    reader = make_token(sessions, api.clinic_id, scopes=["outcomes:read"])
    refused = client.put("/api/v1/patients/P-1", json=ANNA, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403 and "records:write" in refused.get_json()["detail"]
    assert count(sessions, Patient) == 4  # the demo's only
    listed = runner.invoke(args=["tokens", "list", "--clinic", str(api.clinic_id)])
    token_id = listed.output.split()[0]
    assert runner.invoke(args=["tokens", "revoke", token_id]).exit_code == 0
    assert api.get("/patients/P-1").status_code == 401


def test_a_booked_visit_is_reminded_moved_and_cancelled(api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    booked = api.put("/appointments/A-1", visit(location_id=api.location_id))
    assert booked.status_code == 201
    appointment = booked.get_json()
    assert (appointment["patient"], appointment["status"], appointment["external_id"]) == ("P-1", "booked", "A-1")
    assert api.put("/appointments/A-1", visit(location_id=api.location_id)).get_json() == appointment
    now = utcnow()
    with sessions.begin() as session:
        campaigns.plan_campaigns(session, now, now + dt.timedelta(days=30), write=True)
    with sessions() as session:
        reminder = session.scalar(select(Touch).where(Touch.appointment_id == appointment["id"]))
        first_due = reminder.due_at
    assert reminder.step == "reminder" and reminder.status == "planned"
    moved = api.put("/appointments/A-1", visit(days=8, location_id=api.location_id))
    assert moved.status_code == 200 and moved.get_json()["starts_at"] != appointment["starts_at"]
    with sessions() as session:
        assert session.get(Touch, reminder.id).due_at - first_due == dt.timedelta(days=3)
    cancelled = api.delete("/appointments/A-1")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert api.delete("/appointments/A-1").status_code == 200
    with sessions() as session:
        assert session.get(Touch, reminder.id).status == "skipped"
        assert session.get(Appointment, appointment["id"]).status == "cancelled"


def test_a_missed_visit_plans_its_recovery_and_a_future_one_cannot_be_missed(api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    future = api.put("/appointments/A-1", visit(location_id=api.location_id))
    early = api.put("/appointments/A-1", visit(location_id=api.location_id, status="no_show"))
    assert early.status_code == 409 and "has not started" in early.get_json()["detail"]
    past = visit(days=0, location_id=api.location_id)
    past["starts_at"] = (utcnow() - dt.timedelta(hours=3)).isoformat()
    missed = api.put("/appointments/A-2", {**past, "status": "no_show"})
    assert missed.status_code == 201, missed.data
    assert missed.get_json()["status"] == "no_show" and missed.get_json()["recovery_planned"] == 1
    with sessions() as session:
        steps = session.scalars(select(Touch.step).where(Touch.appointment_id == missed.get_json()["id"])).all()
    assert steps == ["missed"]
    rebook = api.put("/appointments/A-2", {**past, "status": "booked"})
    assert rebook.status_code == 409 and "new external id" in rebook.get_json()["detail"]
    assert future.get_json()["status"] == "booked"


def test_bad_appointments_name_the_field(api):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    naive = visit(location_id=api.location_id)
    naive["starts_at"] = naive["starts_at"][:19]
    for body, field in ((visit("nobody", location_id=api.location_id), "patient"),
                        (visit(location_id=999999), "location_id"),
                        (naive, "starts_at"),
                        (visit(location_id=api.location_id, status="reschedule_requested"), "status"),
                        (visit(location_id=api.location_id, provider_title="wizard"), "provider_title"),
                        (visit(location_id="1"), "location_id")):
        response = api.put("/appointments/A-1", body)
        assert response.status_code == 422 and field in problem_errors(response), (field, response.data)


def test_a_prescription_fill_and_stop(api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    due = (utcnow() + dt.timedelta(days=2)).date()
    body = {"patient": "P-1", "medication": "metformin", "refill_due_on": due.isoformat(), "refills_left": 2,
            "pharmacy_name": "Riverside Pharmacy", "pharmacy_phone": "212-555-0177"}
    created = api.put("/prescriptions/RX-1", body)
    assert created.status_code == 201 and created.get_json()["pharmacy_phone"] == "+12125550177"
    now = utcnow()
    with sessions.begin() as session:
        campaigns.plan_campaigns(session, now, now + dt.timedelta(days=30), write=True)
    with sessions() as session:
        prompt = session.scalar(select(Touch).where(Touch.prescription_id == created.get_json()["id"]))
    assert prompt.status == "planned" and prompt.refill_due_on == due
    filled = api.put("/prescriptions/RX-1", {**body, "refill_due_on": (due + dt.timedelta(days=30)).isoformat(),
                                             "refills_left": 1})
    assert filled.status_code == 200
    with sessions() as session:
        assert session.get(Touch, prompt.id).status == "skipped"
        assert session.get(Prescription, prompt.prescription_id).filled_at is not None
    stopped = api.delete("/prescriptions/RX-1")
    assert stopped.status_code == 200 and stopped.get_json()["active"] is False
    assert api.get("/prescriptions/RX-1").get_json()["active"] is False
    assert api.delete("/prescriptions/RX-404").status_code == 404


def test_a_resend_does_not_undo_what_the_patient_said(api, sessions):
    """The patient confirmed on a call: the scheduling system's next sync (booked) leaves it
    confirmed. The patient cancelled: booking it again under the same id is refused."""
    assert api.put("/patients/P-1", ANNA).status_code == 201
    body = visit(location_id=api.location_id)
    appointment_id = api.put("/appointments/A-1", body).get_json()["id"]
    with sessions.begin() as session:
        session.get(Appointment, appointment_id).status = "confirmed"
    resent = api.put("/appointments/A-1", {**body, "appointment_type": "follow-up"})
    assert resent.status_code == 200 and resent.get_json()["status"] == "confirmed"
    with sessions.begin() as session:
        session.get(Appointment, appointment_id).status = "reschedule_requested"
    assert api.put("/appointments/A-1", body).get_json()["status"] == "reschedule_requested"
    moved = api.put("/appointments/A-1", visit(days=9, location_id=api.location_id))
    assert moved.get_json()["status"] == "booked"  # the clinic gave it a new time
    with sessions.begin() as session:
        session.get(Appointment, appointment_id).status = "cancelled"
    again = api.put("/appointments/A-1", body)
    assert again.status_code == 409 and "new external id" in again.get_json()["detail"]
    with sessions() as session:
        assert session.get(Appointment, appointment_id).status == "cancelled"


def test_two_requests_making_the_same_new_record_make_one(api, sessions, monkeypatch):
    """The second of two PUTs racing to create an id finds the first's row when it inserts (the
    unique id decides) and updates it: 200, not a 500, and one patient."""
    from ivr import clinic_records as records

    assert api.put("/patients/P-1", ANNA).status_code == 201
    looked_up = records.row_id
    blind = iter([True])  # the first lookup misses it, as a request that read before the other committed

    def racing_row_id(*args):
        return None if next(blind, False) else looked_up(*args)

    monkeypatch.setattr(records, "row_id", racing_row_id)
    second = api.put("/patients/P-1", {**ANNA, "first_name": "Annie"})
    assert second.status_code == 200 and second.get_json()["first_name"] == "Annie"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Patient).where(Patient.last_name == "Berg")) == 1


def test_a_prescription_stays_with_its_patient_and_its_day_moves_its_prompts(api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    assert api.put("/patients/P-2", {**ANNA, "first_name": "Bob", "phone": "+12125550111"}).status_code == 201
    due = (utcnow() + dt.timedelta(days=2)).date()
    body = {"patient": "P-1", "medication": "sertraline", "refill_due_on": due.isoformat(), "refills_left": 3}
    prescription_id = api.put("/prescriptions/RX-1", body).get_json()["id"]
    handed = api.put("/prescriptions/RX-1", {**body, "patient": "P-2"})
    assert handed.status_code == 409 and "stays with its patient" in handed.get_json()["detail"]
    now = utcnow()
    with sessions.begin() as session:
        campaigns.plan_campaigns(session, now, now + dt.timedelta(days=30), write=True)
    earlier = api.put("/prescriptions/RX-1", {**body, "refill_due_on": (due - dt.timedelta(days=1)).isoformat()})
    assert earlier.status_code == 200 and earlier.get_json()["refills_left"] == 3  # a correction, not a fill
    with sessions() as session:
        prompts = session.execute(select(Touch.refill_due_on, Touch.status, Touch.last_error).where(
            Touch.prescription_id == prescription_id)).all()
        assert session.get(Prescription, prescription_id).filled_at is None
    assert prompts == [(due, "skipped", "due date changed")]
    later = {k: v for k, v in body.items() if k != "refills_left"}
    filled = api.put("/prescriptions/RX-1", {**later, "refill_due_on": (due + dt.timedelta(days=30)).isoformat()})
    assert filled.get_json()["refills_left"] == 2  # left out on a fill: one fewer, as `ivr prescriptions refilled`


def test_dates_a_clinic_cannot_mean_and_bodies_without_a_token(api, client):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    for starts in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+05:00", "1899-12-31T10:00:00+00:00"):
        response = api.put("/appointments/A-1", {**visit(location_id=api.location_id), "starts_at": starts})
        assert response.status_code == 422 and "starts_at" in problem_errors(response), starts
    old = api.put("/patients/P-1", {**ANNA, "date_of_birth": "0001-01-01"})
    assert old.status_code == 422 and "date_of_birth" in problem_errors(old)
    anonymous = client.put("/api/v1/patients/P-1", json={"nonsense": True})
    assert anonymous.status_code == 401  # who asks is checked before what they sent
