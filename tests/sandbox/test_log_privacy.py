"""No personal detail in any log line, with every logger at DEBUG, while every flow runs end to
end through the sandbox: reminder calls (answered, voicemail), reminder texts and their replies,
a no-show recovery call, the inbound line (date of birth by keys, the appointment, a refill, the queue, staff, a call
back, a message after hours), and texts to the clinic."""

import datetime as dt
import logging
import re

import pytest
from sqlalchemy import select, update

from ivr import demo
from ivr.models import Appointment, Clinic, Patient
from ivr.sandbox import calling, script as scripts
from ivr.sandbox.carrier import SandboxCarrier

CLINIC = "+12125550100"
JANE = "+12125550143"
ROBERT = "+12125550162"
MARIA = "+12125550178"
STAFF = "+12125550199"


@pytest.fixture
def live(sandbox_app_factory):
    with calling.serve(sandbox_app_factory) as (app, _base):
        with app.extensions["ivr"].sessions.begin() as session:
            demo.seed(session)
            session.execute(update(Clinic).values(queue_max_wait=3600))
        yield app


def personal_details(app) -> set[str]:
    """What must never be logged: each demo patient's names, phone number (as E.164 and as its
    last ten digits), date of birth as keyed and as stored, medications, and their appointment's
    provider and place (a time of day would match the log's own timestamps)."""
    details = set()
    with app.extensions["ivr"].sessions() as session:
        for patient in session.scalars(select(Patient)):
            details |= {patient.first_name, patient.last_name, patient.phone, patient.phone[-10:]}
            if patient.date_of_birth:
                details |= {patient.date_of_birth.strftime("%m%d%Y"), patient.date_of_birth.isoformat()}
        for appointment in session.scalars(select(Appointment)):
            details.add(appointment.provider_name)
            if appointment.location is not None:
                details.add(appointment.location.name)
    details |= {medication for held in demo.PRESCRIPTIONS.values() for medication, *_ in held}
    return details


def test_no_flow_logs_a_personal_detail_at_debug(live, caplog):
    # Every logger: ours, SQLAlchemy, rq, werkzeug, twilio, urllib3 (one set to a level of its own
    # too, as an operator chasing a problem would).
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm", "rq", "werkzeug",
                 "twilio", "urllib3", "ivr", "outbound", "speech", *logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    services = live.extensions["ivr"]
    store = SandboxCarrier.store_for(services.settings, services.redis)
    with services.sessions() as session:
        jane = session.scalars(select(Appointment).join(Appointment.patient).where(Patient.phone == JANE)).one()
        appointment_id = jane.id

    # A reminder call confirmed by key, and one an answering machine takes.
    calling.place_reminder_call(live, appointment_id, scripts.parse({"replies": ["1", "1"]}), run_worker=True)
    calling.place_reminder_call(live, appointment_id, scripts.parse({"answer": "machine_end_beep"}), run_worker=True)
    # The campaign: Robert's reminder by text, answered C; Maria's call in Spanish.
    with services.sessions.begin() as session:
        session.execute(update(Patient).where(Patient.phone == ROBERT).values(preferred_channel="sms"))
    store.set_phone(ROBERT, scripts.parse({"texts": {"replies": ["C"]}}))
    live.test_cli_runner().invoke(args=["reminders", "schedule"])
    calling._texts_after(live, ROBERT, lambda: calling._work(live), wait=5)
    # A missed visit: Maria's, offered a new appointment by call (in Spanish), which she asks for.
    from ivr.models import Touch, utcnow

    with services.sessions.begin() as session:
        maria = session.scalars(select(Appointment).join(Appointment.patient).where(Patient.phone == MARIA)).one()
        maria.starts_at, maria_id = utcnow() - dt.timedelta(hours=3), maria.id
    store.set_phone(MARIA, scripts.parse({"replies": ["1", "1"]}))
    live.test_cli_runner().invoke(args=["appointments", "no-show", str(maria_id)])
    calling._work(live)
    with services.sessions() as session:
        recovery = session.scalars(select(Touch.id).where(Touch.appointment_id == maria_id, Touch.step == "missed")).one()
    calling.wait_for_transcript(store, calling.wait_for_call_sid(services.sessions, recovery, timeout=30), timeout=30)
    # The inbound line: identified by date of birth, the appointment heard (twice) and confirmed,
    # a refill, then a person from the queue, whom staff take; then a call back chosen in the queue.
    store.set_phone(STAFF, scripts.parse({"replies": ["1"]}))
    calling.place_inbound_call(live, JANE, CLINIC, scripts.parse({"replies": ["silence", "04121950", "1", "9", "1",
                                                                              "2", "1", "3"]}), run_worker=True)
    calling.place_inbound_call(live, JANE, CLINIC, scripts.parse({"replies": ["silence", "04121950", "3"],
                                                                  "queue": "call_back"}), run_worker=True)
    # After hours: a message for staff.
    with services.sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        clinic_id = clinic.id
    live.test_cli_runner().invoke(args=["clinics", "closed", str(clinic_id), dt.date.today().isoformat()])
    live.test_cli_runner().invoke(args=["clinics", "closed", str(clinic_id),
                                        (dt.date.today() + dt.timedelta(days=1)).isoformat()])
    calling.place_inbound_call(live, JANE, CLINIC, scripts.parse({"replies": ["silence", "hangup"]}), run_worker=True)
    # Texts to the clinic: a question nobody's flow expects, then STOP.
    calling.text_clinic(live, JANE, CLINIC, "Can I bring my daughter Jane?", 3, run_worker=True)
    calling.text_clinic(live, JANE, CLINIC, "STOP", 3, run_worker=True)

    # The mapper's own DEBUG lines print the schema, whose column comments give examples ("the
    # provider's name, no title ('Amara Patel')"): documentation, not anyone's record.
    logged = [(r.name, re.sub(r'comment="[^"]*"', "comment=...", r.getMessage())) for r in caplog.records]
    # The flows ran, and logged: rows at DEBUG among the rest.
    assert len(logged) > 200 and any(message == "Row (values redacted)" for _, message in logged)
    from ivr.models import Call, Escalation, Message, Task

    with services.sessions() as session:
        assert session.scalar(select(Appointment.status).where(Appointment.id == appointment_id)) == "confirmed"
        assert len(session.scalars(select(Call)).all()) >= 5
        assert {e.queue_status for e in session.scalars(select(Escalation))} >= {"taken", "call_back"}
        assert {t.kind for t in session.scalars(select(Task))} >= {"refill_request", "unmatched_text", "rebook_request"}
        assert session.scalars(select(Message).where(Message.kind == "reminder")).first() is not None
    leaks = set()
    for detail in personal_details(live):
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(detail)}(?![0-9A-Za-z])")
        for name, message in logged:
            found = pattern.search(message)
            if found:
                leaks.add(f"{name}: {detail!r} in ...{message[max(0, found.start() - 60):found.end() + 60]}...")
    assert not leaks, "\n".join(sorted(leaks))
