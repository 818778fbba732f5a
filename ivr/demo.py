"""Demo clinic data for `ivr seed-demo` and `make run`: fictional people, 555 numbers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.models import Appointment, Campaign, CampaignStep, Clinic, Location, Patient, Prescription, utcnow

DEMO_CLINIC = "Riverside Family Clinic"

PATIENTS = [
    # first, last, phone, language, days ahead, local hour, minute, provider (a doctor), channel
    ("Jane", "Doe", "+12125550143", "en", 1, 9, 30, "Amara Patel", "voice"),
    ("Robert", "Miller", "+12125550162", "en", 2, 14, 0, "Daniel Okafor", "voice"),
    ("Maria", "Garcia", "+12125550178", "es", 2, 11, 15, "Amara Patel", "voice"),
    ("Linda", "Chen", "+12125550185", "en", 2, 16, 45, "Daniel Okafor", "sms"),   # prefers texts
]
# Active prescriptions a demo patient can ask to refill on the inbound line: medication, days until
# the patient runs out (refill prompts go 3 days before), refills left.
PRESCRIPTIONS = {"Jane": (("metformin", 3, 2), ("lisinopril", 20, 5)), "Robert": (("atorvastatin", 10, 1),)}
PHARMACY = ("Riverside Pharmacy", "+12125550177")


def seed(session: Session, now: dt.datetime | None = None) -> tuple[Clinic, bool]:
    """Create the demo clinic unless it exists; returns it and whether it was created."""
    existing = session.scalars(select(Clinic).where(Clinic.name == DEMO_CLINIC)).first()
    if existing is not None:
        return existing, False
    now = now or utcnow()
    # The demo clinic calls at any hour so it can be tried at any hour; real clinics default
    # to 9:00-20:00 in each patient's own time zone.
    clinic = Clinic(name=DEMO_CLINIC, timezone="America/New_York", phone="+12125550100",
                    staff_phone="+12125550199", language="en",
                    calls_from=dt.time(0), calls_until=dt.time(23, 59, 59))
    location = Location(clinic=clinic, name="Main Street", timezone="America/New_York")
    tz = ZoneInfo(clinic.timezone)
    today = now.astimezone(tz).date()
    for first, last, phone, language, days, hour, minute, provider, channel in PATIENTS:
        patient = Patient(clinic=clinic, first_name=first, last_name=last, phone=phone,
                          date_of_birth=dt.date(1950, 4, 12), language=language, preferred_channel=channel,
                          consent_at=now, consent_source="demo")
        starts = dt.datetime.combine(today + dt.timedelta(days=days), dt.time(hour, minute), tz)
        session.add(Appointment(patient=patient, location=location, provider_name=provider,
                                provider_title="doctor", starts_at=starts))
        for medication, runs_out_in, refills in PRESCRIPTIONS.get(first, ()):
            session.add(Prescription(patient=patient, medication=medication, refills_left=refills,
                                     refill_due_on=today + dt.timedelta(days=runs_out_in),
                                     pharmacy_name=PHARMACY[0], pharmacy_phone=PHARMACY[1]))
    # One reminder per appointment 72 hours ahead (at once, for a visit sooner), by the patient's
    # channel; a busy or unanswered call is tried twice more, half an hour apart, then texted.
    # Two hours after a visit marked missed, an offer to book again, the same way; three days
    # before a prescription runs out, an offer to refill it.
    session.add(Campaign(clinic=clinic, name="Appointment reminders", steps=[
        CampaignStep(name="reminder", offset_minutes=-72 * 60, channel="preferred", audience="all",
                     fallback_sms=True, retry_on="busy,no-answer", max_attempts=3, retry_minutes=30),
        CampaignStep(name="missed", purpose="no_show", offset_minutes=120, channel="preferred", audience="all",
                     fallback_sms=True, retry_on="busy,no-answer", max_attempts=3, retry_minutes=30),
        CampaignStep(name="refill", purpose="refill", offset_minutes=-3 * 1440, channel="preferred", audience="all",
                     fallback_sms=True, retry_on="busy,no-answer", max_attempts=3, retry_minutes=30)]))
    session.add(clinic)
    session.flush()
    return clinic, True
