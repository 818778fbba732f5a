"""Virtual hold: a caller nobody could take chose to be called back as soon as someone is free.

The job rings the clinic's staff phone; staff hear who asked and press 1, and only then is the
caller dialled, from the clinic's number (ivr/webhooks.py, /voice/callback/...). The escalation
is claimed in the database first (planned -> dialing), so two workers, or a job that runs again,
ring staff once. When nobody takes the staff call, or the caller does not answer, a person owes
the caller a call: a call_back task, due within one business day.
"""

from __future__ import annotations

import logging

from rq import Retry
from sqlalchemy import select, update

from ivr import tasks
from ivr.errors import PermanentDialError, UncertainDialError
from ivr.models import Call, Clinic, Escalation, utcnow
from ivr.services import current_services
from ivr.telephony import CallRequest
from outbound.queueing import enqueue_once, outbound_queue

log = logging.getLogger(__name__)
RETRY = Retry(max=3, interval=[30, 120, 600])


def job_id_for_call_back(escalation_id: int) -> str:
    return f"call-back-{escalation_id}"


def enqueue_call_back(queue, escalation_id: int) -> bool:
    """Queue the call back of an escalation, once."""
    return enqueue_once(queue, "outbound.callbacks.call_back", escalation_id,
                        job_id_for_call_back(escalation_id), f"call back for escalation {escalation_id}", RETRY)


def fail_stuck_call_backs(session, before) -> int:
    """Call backs left dialling or connecting since before `before` (a worker that died after
    claiming one, a lost status callback) fail to a task: the caller was promised a call."""
    stuck = session.scalars(select(Escalation.id).where(
        Escalation.callback_status.in_(("dialing", "connecting")), Escalation.ended_at < before))
    return sum(fail(session, escalation_id) for escalation_id in list(stuck))


def requeue_call_backs(queue, session) -> int:
    """Give every planned call back without a live job one (after Redis lost its data)."""
    from outbound.queueing import has_live_job

    planned = session.scalars(select(Escalation.id).where(Escalation.callback_status == "planned"))
    return sum(enqueue_call_back(queue, escalation_id) for escalation_id in planned
               if not has_live_job(queue, job_id_for_call_back(escalation_id)))


def enqueue_call_back_soon(services, escalation_id: int) -> None:
    """After a request that planned a call back: queue its job (reconcile would find it otherwise)."""
    try:
        enqueue_call_back(outbound_queue(services.redis), escalation_id)
    except Exception as exc:  # noqa: BLE001 - the planned row remains for reconcile
        log.warning("escalation %s: call back not queued (%s)", escalation_id, type(exc).__name__)


def queue_call_back_soon(services, call_sid: str) -> None:
    """After a turn that planned a call back: queue its job (reconcile would find it otherwise)."""
    try:
        with services.sessions() as session:
            escalation_id = session.scalar(select(Escalation.id).join(Call, Call.id == Escalation.call_id)
                                           .where(Call.call_sid == call_sid, Escalation.callback_status == "planned"))
        if escalation_id is not None:
            enqueue_call_back(outbound_queue(services.redis), escalation_id)
    except Exception as exc:  # noqa: BLE001 - the caller has hung up; the planned row remains
        log.warning("call %s: call back not queued (%s)", call_sid, type(exc).__name__)


def call_back(escalation_id: int) -> str | None:
    """Ring the staff phone for a planned call back; the staff call's SID, or None when there was
    nothing to do (already claimed) or nobody to ring (then a task)."""
    services = current_services()
    settings = services.settings
    with services.sessions.begin() as session:
        claimed = session.execute(update(Escalation).where(
            Escalation.id == escalation_id, Escalation.callback_status == "planned")
            .values(callback_status="dialing")).rowcount
        if not claimed:
            log.info("escalation %s: call back not planned; nothing to do", escalation_id)
            return None
        escalation = session.get(Escalation, escalation_id)
        clinic = session.get(Clinic, escalation.clinic_id) if escalation.clinic_id else None
        staff = (clinic.staff_phone if clinic else None) or settings.fallback_staff_number
        if not staff:
            fail(session, escalation_id)
            return None
        # Staff answer at once to a person's voice: no answering-machine detection's dead air.
        request = CallRequest(to=staff, from_=(clinic.phone if clinic else None) or settings.from_number,
                              url=f"{settings.public_base_url}/twilio/voice/callback/{escalation_id}",
                              status_callback=f"{settings.public_base_url}/twilio/status/callback/{escalation_id}",
                              machine_detection=False)
    try:
        sid = services.dialer.place_call(request)
    except PermanentDialError:
        with services.sessions.begin() as session:
            fail(session, escalation_id)
        return None
    except UncertainDialError:
        # The staff call may exist: never ring twice. A person checks.
        with services.sessions.begin() as session:
            fail(session, escalation_id)
        raise
    except Exception:
        with services.sessions.begin() as session:  # never reached the carrier: try again
            session.execute(update(Escalation).where(Escalation.id == escalation_id,
                                                     Escalation.callback_status == "dialing")
                            .values(callback_status="planned"))
        raise
    with services.sessions.begin() as session:
        session.execute(update(Escalation).where(Escalation.id == escalation_id).values(callback_call_sid=sid))
    log.info("escalation %s: staff rung for a call back (%s)", escalation_id, sid)
    return sid


def fail(session, escalation_id: int, states: tuple[str, ...] = ("planned", "dialing", "connecting")) -> bool:
    """The call back did not connect anyone: a person owes the caller a call (a task, once)."""
    changed = session.execute(update(Escalation).where(
        Escalation.id == escalation_id, Escalation.callback_status.in_(states))
        .values(callback_status="failed")).rowcount
    if not changed:
        return False
    escalation = session.get(Escalation, escalation_id)
    call = session.get(Call, escalation.call_id)
    clinic = session.get(Clinic, escalation.clinic_id) if escalation.clinic_id else None
    tasks.open_task(session.connection(), kind="call_back", clinic_id=escalation.clinic_id,
                    patient_id=call.patient_id, call_id=call.id,
                    phone=None if call.patient_id else call.from_number,
                    due=tasks.due_at(utcnow(), clinic.timezone if clinic else "UTC",
                                     clinic.phone if clinic else None, 1,
                                     clinic.holiday_country if clinic else None,
                                     clinic.holiday_subdivision if clinic else None))
    return True
