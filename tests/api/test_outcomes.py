"""Outcomes and tasks read a page at a time, and the limits on how often."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from ivr import create_app, tasks
from ivr.models import Call, Patient, Touch, utcnow
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
        session.execute(update(Touch).values(updated_at=utcnow()))  # every change at one moment: ids break ties
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
    later = api.get("/outcomes", since=(utcnow() + dt.timedelta(minutes=5)).isoformat()).get_json()
    assert later["items"] == []
    for bad in ("nonsense", "W10", "WyIyMDI2LTEyLTA4VDAwOjAwOjAwIiwgMV0"):  # the last: a time without its zone
        response = api.get("/outcomes", cursor=bad)
        assert response.status_code == 400 and response.get_json()["detail"] == "the cursor is not one this server gave"
    assert api.get("/outcomes", limit=0).status_code == 422


def test_tasks_name_the_clinics_ids(api, other_api, sessions):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    assert api.put("/appointments/A-1", visit(location_id=api.location_id)).status_code == 201
    with sessions.begin() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.first_name == "Anna"))
        tasks.open_task(session.connection(), kind="call_back", due=utcnow(), clinic_id=api.clinic_id,
                        patient_id=patient_id)
    items = api.get("/tasks").get_json()["items"]
    assert [(t["kind"], t["patient"], t["status"]) for t in items] == [("call_back", "P-1", "open")]
    assert other_api.get("/tasks").get_json()["items"] == []


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
    finally:
        limited.extensions["ivr"].engine.dispose()
