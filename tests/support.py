"""Helpers shared by tests: signed Twilio requests, TwiML parsing, demo rows."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from ivr import demo as demo_data
from ivr.models import Appointment, Patient, Touch, utcnow

AUTH_TOKEN = "test-auth-token"
PUBLIC_BASE_URL = "https://ivr.example.test"
ACCOUNT_SID = "AC" + "0" * 32


def call_sid(n: int = 1) -> str:
    return f"CA{n:032x}"


class TwilioClient:
    """A Flask test client that signs form posts with the auth token, like Twilio, and remembers
    where each call's last TwiML sends its answers (the turn-numbered action URLs)."""

    def __init__(self, client, token: str = AUTH_TOKEN, base_url: str = PUBLIC_BASE_URL):
        self.client, self.validator, self.base_url = client, RequestValidator(token), base_url
        self.next_urls: dict[str, dict[str, str]] = {}

    def post(self, path: str, data: dict | None = None, *, signature: str | None = None):
        data = {"AccountSid": ACCOUNT_SID, **(data or {})}
        if signature is None:
            signature = self.validator.compute_signature(self.base_url + path, data)
        response = self.client.post(path, data=data, headers={"X-Twilio-Signature": signature})
        response.get_data()
        response.close()  # as a server does once the answer is sent: runs its call_on_close work
        if response.status_code == 200 and response.mimetype == "text/xml" and "CallSid" in data:
            self.next_urls[data["CallSid"]] = answer_urls(response.data)
        return response

    def next_url(self, sid: str, kind: str, default: str) -> str:
        """Where the call's current TwiML sends an answer ('answer'), silence ('silence') or a
        transfer's result ('dial'), as Twilio would follow it."""
        return self.next_urls.get(sid, {}).get(kind, default)


def answer_urls(xml: bytes) -> dict[str, str]:
    """The action URLs of a TwiML document: answer (Gather/Record), silence (Redirect), dial."""
    urls: dict[str, str] = {}
    for element in ET.fromstring(xml).iter():
        if element.tag in ("Gather", "Record") and element.get("action"):
            urls["answer"] = element.get("action")
        elif element.tag == "Redirect":
            urls["silence"] = (element.text or "").strip()
        elif element.tag == "Dial" and element.get("action"):
            urls["dial"] = element.get("action")
    return urls


@dataclass(frozen=True)
class Demo:
    appointment_id: int
    touch_id: int
    patient_phone: str
    staff_phone: str


def seed_demo_touch(sessions) -> Demo:
    """Seed the demo clinic and plan a reminder touch for Jane's appointment."""
    with sessions.begin() as session:
        clinic, _ = demo_data.seed(session, now=utcnow())
        appointment = session.scalars(
            select(Appointment).join(Appointment.patient).where(Patient.first_name == "Jane")).one()
        touch = Touch(appointment=appointment, step="reminder", channel="voice", due_at=utcnow())
        session.add(touch)
        session.flush()
        return Demo(appointment.id, touch.id, appointment.patient.phone, clinic.staff_phone)


@dataclass(frozen=True)
class Verb:
    """One TwiML element: its name, attributes, text and children."""

    name: str
    attrs: dict
    text: str
    children: tuple


def parse_twiml(xml: str | bytes) -> list[Verb]:
    """The verbs inside <Response>, in order."""
    root = ET.fromstring(xml)
    assert root.tag == "Response", f"root is {root.tag}, not Response"
    return [_verb(child) for child in root]


def _verb(element) -> Verb:
    return Verb(element.tag, dict(element.attrib), (element.text or "").strip(),
                tuple(_verb(child) for child in element))


def spoken(verbs: list[Verb]) -> list[str]:
    """Every sentence a caller hears from these verbs, in order (Say inside Gather included)."""
    out: list[str] = []
    for verb in verbs:
        if verb.name == "Say":
            out.append(verb.text)
        out.extend(spoken(list(verb.children)))
    return out


def local_days_from_now(days: int) -> dt.date:
    return (utcnow() + dt.timedelta(days=days)).date()


def race(app, work, runners: int = 2, timeout: float = 30) -> list:
    """Run work() in `runners` threads (each in an app context) released at the same moment, as
    workers racing for the same job would; their results."""
    import threading

    start, results = threading.Barrier(runners), []

    def runner():
        with app.app_context():
            start.wait()
            results.append(work())

    threads = [threading.Thread(target=runner) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
