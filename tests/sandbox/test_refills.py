"""Refill prompts across the real stack: the campaign plans the demo's refill prompt, the worker
texts it through the sandbox carrier, the patient's reply travels back over signed HTTP, and the
refill request is a task for the pharmacy team, confirmed by text."""

import datetime as dt
import time

from sqlalchemy import select, update

from ivr.models import Appointment, Message, Patient, Prescription, Task
from ivr.sandbox import calling, script as scripts
from ivr.sandbox.carrier import SandboxCarrier
from outbound.queueing import outbound_queue
from outbound.worker import AppSimpleWorker

ROBERT = "+12125550162"


def test_a_patient_who_prefers_texts_asks_for_the_refill_by_replying_1(sandbox_app_factory):
    from ivr import demo

    with calling.serve(sandbox_app_factory) as (app, _base):
        services = app.extensions["ivr"]
        with services.sessions.begin() as session:
            demo.seed(session)
            robert = session.scalars(select(Patient).where(Patient.phone == ROBERT)).one()
            robert.preferred_channel = "sms"
            # Robert's atorvastatin runs out in three days: its prompt is due now. Nobody else's
            # prescription, nor any visit, is due for a word here (the other tests have those).
            atorvastatin = session.scalars(select(Prescription).where(Prescription.patient_id == robert.id)).one()
            atorvastatin.refill_due_on -= dt.timedelta(days=7)
            session.execute(update(Prescription).where(Prescription.patient_id != robert.id)
                            .values(refill_due_on=None))
            session.execute(update(Appointment).values(status="cancelled"))
        store = SandboxCarrier.store_for(services.settings, services.redis)
        store.set_phone(ROBERT, scripts.parse({"texts": {"replies": ["1"]}}))
        result = app.test_cli_runner().invoke(args=["campaign", "run", "--within-hours", "1"])
        assert result.output.startswith("planned 1 new contact(s); queued 1;"), result.output
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            AppSimpleWorker([outbound_queue(services.redis)], connection=services.redis, app=app).work(burst=True)
            with services.sessions() as session:
                sent = session.scalars(select(Message).where(Message.direction == "outbound").order_by(Message.id)).all()
                if len(sent) == 2 and all(m.status == "delivered" for m in sent):
                    break
            time.sleep(0.1)
        with services.sessions() as session:
            tasks = [(t.kind, t.prescription_id, t.patient_id) for t in session.scalars(select(Task))]
            drug = session.scalars(select(Prescription).where(Prescription.medication == "atorvastatin")).one()
        bodies = [m["body"] for m in store.messages(ROBERT) if m["to"] == ROBERT]
    assert bodies == ["Riverside Family Clinic: a prescription of yours is due for a refill. Reply 1 to ask for it, "
                      "or call us at (212) 555-0100.",
                      "Thank you. We have your refill request. Our pharmacy team will look at it within one "
                      "business day. Riverside Family Clinic"]
    assert tasks == [("refill_request", drug.id, drug.patient_id)]
