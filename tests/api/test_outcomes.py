"""Outcomes and tasks read a page at a time, and the limits on how often."""

from __future__ import annotations

import base64
import datetime as dt
import json

from sqlalchemy import select, update

from ivr import create_app, tasks
from ivr.models import Call, Patient, Task, Touch, utcnow
from tests.api.conftest import make_token
from tests.api.test_records import ANNA, visit
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL


def test_outcomes_come_a_page_at_a_time_each_once_and_only_the_clinics_own(api, other_api, sessions, demo):
    with sessions.begin() as session:
        jane = session.get(Touch, demo.touch_id)
        for step in ("a", "b", "c", "d"):
            session.add(Touch(appointment_id=jane.appointment_id, step=step, channel="voice", due_at=utcnow()))
        session.flush()
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="completed"))
        session.add(Call(call_sid="CA" + "1" * 32, direction="outbound-api", flow="reminder", touch_id=demo.touch_id,
                         status="completed", outcome="confirmed"))
        # Every change a minute ago, at one moment: ids break the ties.
        session.execute(update(Touch).values(updated_at=utcnow() - dt.timedelta(minutes=1)))
    seen, cursor, pages = [], None, 0
    while True:
        page = api.get("/outcomes", limit=2, **({"cursor": cursor} if cursor else {})).get_json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and [item["id"] for item in seen] == sorted({item["id"] for item in seen})
    assert [item["step"] for item in seen] == ["reminder", "a", "b", "c", "d"]
    first = seen[0]
    assert (first["status"], first["result"], first["appointment_status"]) == ("completed", "confirmed", "booked")
    assert other_api.get("/outcomes").get_json() == {"items": [], "next_cursor": None}
    later = api.get("/outcomes", since=(utcnow() - dt.timedelta(seconds=50)).isoformat()).get_json()
    assert later["items"] == []
    # A change is listed once settled (a change still committing with an earlier time is not passed over).
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.step == "d").values(status="skipped", updated_at=utcnow()))
    assert [i["step"] for i in api.get("/outcomes").get_json()["items"]] == ["reminder", "a", "b", "c"]
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.step == "d").values(
            updated_at=utcnow() - dt.timedelta(seconds=31)))
    settled = api.get("/outcomes", cursor=page_cursor_after(api, "c")).get_json()["items"]
    assert [(i["step"], i["status"]) for i in settled] == [("d", "skipped")]
    for bad in ("nonsense", "W10", "WyIyMDI2LTEyLTA4VDAwOjAwOjAwIiwgMV0",  # a time without its zone
                cursor_for("0001-01-01T00:30:00+05:00", 1), cursor_for("2026-12-08T00:00:00+00:00", 2**63)):
        response = api.get("/outcomes", cursor=bad)
        assert response.status_code == 400 and response.get_json()["detail"] == "the cursor is not one this server gave"
    assert api.get("/outcomes", limit=0).status_code == 422
    assert api.get("/outcomes", since="9999-12-31T23:00:00-05:00").status_code == 422


def cursor_for(moment: str, row: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([moment, row]).encode()).decode().rstrip("=")


def page_cursor_after(api, step: str) -> str:
    """A cursor just past the listed contact of that step."""
    item = next(i for i in api.get("/outcomes", limit=500).get_json()["items"] if i["step"] == step)
    return cursor_for(item["updated_at"], item["id"])


def test_tasks_name_the_clinics_ids(api, other_api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    assert api.put("/appointments/A-1", visit(location_id=api.location_id)).status_code == 201
    with sessions.begin() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.first_name == "Anna"))
        tasks.open_task(session.connection(), kind="call_back", due=utcnow(), clinic_id=api.clinic_id,
                        patient_id=patient_id)
    assert api.get("/tasks").get_json()["items"] == []  # not settled yet
    with sessions.begin() as session:
        session.execute(update(Task).values(created_at=utcnow() - dt.timedelta(minutes=2)))
    page = api.get("/tasks").get_json()
    assert [(t["kind"], t["patient"], t["status"]) for t in page["items"]] == [("call_back", "P-1", "open")]
    assert other_api.get("/tasks").get_json()["items"] == []
    # Closed later, it comes again after the cursor of a client that saw it opened.
    seen = page["items"][0]
    with sessions.begin() as session:
        session.execute(update(Task).values(status="done", closed_at=utcnow() - dt.timedelta(minutes=1)))
    after = api.get("/tasks", cursor=cursor_for(seen["created_at"], seen["id"])).get_json()["items"]
    assert [(t["id"], t["status"]) for t in after] == [(seen["id"], "done")]


def test_a_token_over_its_rate_is_told_when_to_come_back(database_url, redis, tmp_path, client, sessions, api):
    limited = create_app({"ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                          "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": str(tmp_path / "limited"),
                          "REDIS": redis, "API_RATE_LIMIT": "3 per minute"})
    try:
        other = make_token(sessions, api.clinic_id)
        answers = [limited.test_client().get("/api/v1/outcomes", headers={"Authorization": f"Bearer {api.token}"})
                   for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].headers["Content-Type"] == "application/problem+json"
        assert 0 < int(answers[3].headers["Retry-After"]) <= 60
        fresh = limited.test_client().get("/api/v1/outcomes", headers={"Authorization": f"Bearer {other}"})
        assert fresh.status_code == 200  # another token has its own count
        # Tokens this server does not know are counted by address, however many are tried.
        guesses = [limited.test_client().get("/api/v1/outcomes", headers={"Authorization": f"Bearer ivr_guess{i}"})
                   for i in range(4)]
        assert [g.status_code for g in guesses] == [401, 401, 401, 429]
    finally:
        limited.extensions["ivr"].engine.dispose()


def test_calls_and_messages_name_the_clinics_ids_and_hold_no_words_or_numbers(api, other_api, sessions, demo):
    from ivr.models import Message

    with sessions.begin() as session:
        jane = session.get(Touch, demo.touch_id)
        a_minute_ago = utcnow() - dt.timedelta(minutes=1)
        session.add(Call(call_sid="CA" + "2" * 32, direction="outbound-api", flow="reminder", touch_id=jane.id,
                         clinic_id=api.clinic_id, patient_id=jane.patient_id, appointment_id=jane.appointment_id,
                         status="completed", outcome="confirmed", from_number="+12125550100",
                         to_number=demo.patient_phone, created_at=a_minute_ago, ended_at=a_minute_ago))
        session.add(Message(clinic_id=api.clinic_id, patient_id=jane.patient_id, direction="outbound",
                            kind="reminder", from_number="+12125550100", to_number=demo.patient_phone,
                            body="Jane, your visit with Dr. Patel", encoding="gsm7", segments=1, status="delivered",
                            created_at=a_minute_ago, updated_at=a_minute_ago))
    calls = api.get("/calls").get_json()["items"]
    assert [(c["direction"], c["status"], c["outcome"], c["contact"]) for c in calls] == [
        ("outbound-api", "completed", "confirmed", demo.touch_id)]
    texts = api.get("/messages").get_json()
    assert [(m["kind"], m["status"], m["segments"]) for m in texts["items"]] == [("reminder", "delivered", 1)]
    assert "Jane" not in json.dumps(texts) and demo.patient_phone not in json.dumps(calls)
    assert other_api.get("/calls").get_json()["items"] == [] and other_api.get("/messages").get_json()["items"] == []


def test_a_patient_let_go_is_rung_no_more(api, sessions):
    from ivr.models import Appointment, Prescription

    assert api.put("/patients/P-1", ANNA).status_code == 201
    appointment_id = api.put("/appointments/A-1", visit(location_id=api.location_id)).get_json()["id"]
    prescription_id = api.put("/prescriptions/RX-1", {"patient": "P-1", "medication": "metformin"}).get_json()["id"]
    past = visit(days=0, location_id=api.location_id)
    past["starts_at"] = (utcnow() - dt.timedelta(hours=3)).isoformat()
    missed = api.put("/appointments/A-0", {**past, "status": "no_show"}).get_json()
    assert missed["recovery_planned"] == 1  # an offer to book again, planned
    gone = api.delete("/patients/P-1")
    assert gone.status_code == 200 and gone.get_json()["external_id"] == "P-1"
    with sessions() as session:
        assert session.get(Appointment, appointment_id).status == "cancelled"
        assert session.get(Prescription, prescription_id).active is False
        planned = session.scalars(select(Touch).join(Patient, Patient.id == Touch.patient_id).where(
            Patient.first_name == "Anna", Touch.status == "planned")).all()
    assert planned == []  # nobody rings her again, not even about the missed visit
    assert api.delete("/patients/P-404").status_code == 404
