"""The integrations issue's first promise, end to end over real HTTP: a scheduling system books a
visit through the API, the next campaign run reminds the patient, the patient confirms in the
sandbox, and the clinic's receiver gets a signed `appointment.confirmed` naming the visit by the
clinic's own id."""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import requests
from standardwebhooks.webhooks import Webhook

from ivr.sandbox.calling import serve
from outbound.queueing import outbound_queue
from outbound.worker import AppSimpleWorker
from tests.events.test_webhooks import Receiver
from tests.sandbox.test_cli import sandbox_app


def test_a_visit_booked_through_the_api_is_reminded_confirmed_and_reported(database_url, redis, tmp_path):
    receiver = Receiver()
    try:
        with serve(lambda base: sandbox_app(database_url, redis, tmp_path, base)) as (app, base):
            runner = app.test_cli_runner()
            assert runner.invoke(args=["seed-demo"]).exit_code == 0
            token = runner.invoke(args=["tokens", "add", "1", "scheduling system"]).stdout.splitlines()[1]
            secret = runner.invoke(args=["webhooks", "add", "1", receiver.url, "--event", "appointment.confirmed"]
                                   ).stdout.splitlines()[1]
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {token}"
            patient = api.put(f"{base}/api/v1/patients/MRN-4417", json={
                "first_name": "Ruth", "last_name": "Okafor", "phone": "212-555-0191", "language": "en"})
            assert patient.status_code == 201, patient.text
            starts = (dt.datetime.now(ZoneInfo("America/New_York")) + dt.timedelta(days=2)).replace(
                hour=10, minute=30, second=0, microsecond=0)
            booked = api.put(f"{base}/api/v1/appointments/V-1001", json={
                "patient": "MRN-4417", "location_id": 1, "provider_name": "Amara Patel", "provider_title": "doctor",
                "starts_at": starts.isoformat()})
            assert booked.status_code == 201, booked.text
            assert runner.invoke(args=["sandbox", "phone", "+12125550191", "--keys", "1,1"]).exit_code == 0
            assert runner.invoke(args=["campaign", "run"]).exit_code == 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(b'"V-1001"' in body for _, body in receiver.requests):
                AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)
                time.sleep(0.1)
            AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)  # nothing more
            seen = api.get(f"{base}/api/v1/appointments/V-1001").json()
    finally:
        receiver.close()
    assert len(receiver.requests) >= 1, "no event reached the receiver"
    confirmed = [Webhook(secret).verify(body, headers) for headers, body in receiver.requests]
    ours = [event for event in confirmed if event["data"]["appointment"] == "V-1001"]
    assert len(ours) == 1
    assert ours[0]["type"] == "appointment.confirmed"
    assert (ours[0]["data"]["patient"], ours[0]["data"]["status"], ours[0]["data"]["channel"]) == (
        "MRN-4417", "confirmed", "voice")
    assert seen["status"] == "confirmed"
    assert "Ruth" not in json.dumps(ours)
