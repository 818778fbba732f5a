"""Ring the clinic's staff lines for the first caller waiting in its queue, one line after another.

One job per clinic (`ring-staff-<clinic>`, queued once at a time) rings the line the first caller
in line is at (or, where the clinic rings its lines together, every line at once: the first
staff member to press 1 takes the caller, and a round lasts 90 seconds). It claims the line in the database first (ring_call_sid NULL -> 'dialing', only
while the caller waits), so two workers or a retried job ring it once. Staff hear the whisper at
/twilio/voice/queue/staff/<escalation>/<line> and press 1 to take the caller; the staff call's end
(/twilio/status/queue/<escalation>/<line>) moves the caller to the next line and rings it. After
the last line the round ends; the first caller's next wait (every 25 seconds or so) starts the
next one, until the clinic's longest wait. When staff take a caller, or a caller leaves, the job
runs again for whoever is first in line now (ivr/inbound/queue.py).
"""

from __future__ import annotations

import logging
import re

from rq import Retry
from rq.job import JobStatus
from sqlalchemy import select, update

from ivr.errors import PermanentDialError, UncertainDialError
from ivr.inbound import queue as caller_queue
from ivr.models import Clinic, Escalation, utcnow
from ivr.services import current_services
from ivr.telephony import CallRequest
from outbound.queueing import enqueue_once, has_live_job, outbound_queue

log = logging.getLogger(__name__)
# A caller is waiting: retry soon, and not for long (their next wait asks again anyway).
RETRY = Retry(max=3, interval=[2, 5, 10])
QUEUE_SID = re.compile(r"QU[0-9a-fA-F]{32}")


def job_id(clinic_id: int) -> str:
    return f"ring-staff-{clinic_id}"


def enqueue_ring(queue, clinic_id: int) -> bool:
    """Queue the ringing of a staff line for the clinic's first caller, ahead of campaign work (a
    caller is waiting), unless it is queued already. A finished job keeps no result, and a failed
    one is cleared, so the next call can always queue it again."""
    def queue_it() -> bool:
        return enqueue_once(queue, "outbound.staff_ringing.ring_staff", clinic_id, job_id(clinic_id),
                            f"ring a staff line for clinic {clinic_id}'s first caller", RETRY,
                            result_ttl=0, failure_ttl=86400, at_front=True)

    if queue_it():
        return True
    stuck = queue.fetch_job(job_id(clinic_id))
    if stuck is not None and stuck.get_status() in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        stuck.delete()
        return queue_it()
    return False


def ring_soon(services, clinic_id: int | None) -> None:
    """After a change in a clinic's line: ring for whoever is first in it."""
    if clinic_id is None:
        return
    try:
        enqueue_ring(outbound_queue(services.redis), clinic_id)
    except Exception as exc:  # noqa: BLE001 - the first caller's next wait, or reconcile, asks again
        log.warning("clinic %s: staff not rung yet (%s)", clinic_id, type(exc).__name__)


def requeue(queue, session) -> int:
    """Give every clinic with callers in line a job (after Redis lost its data)."""
    return sum(enqueue_ring(queue, clinic_id) for clinic_id in caller_queue.clinics_waiting(session, utcnow())
               if not has_live_job(queue, job_id(clinic_id)))


def ring_staff(clinic_id: int) -> str | None:
    """Ring the staff line the clinic's first caller is at (or every line, where the clinic rings
    them together); a staff call's SID, or None when there was nothing to do (nobody waits, or
    their line rings already)."""
    services = current_services()
    settings = services.settings
    now = utcnow()
    with services.sessions.begin() as session:
        first = caller_queue.first_in_line(session, clinic_id, now)
        if first is None:
            return None
        escalation_id, line = first.id, first.ring_line
        clinic = session.get(Clinic, clinic_id)
        numbers = caller_queue.staff_numbers(session, clinic, settings.fallback_staff_number)
        together = clinic is not None and clinic.ring_together
        claimed = (caller_queue.claim_all_lines(session, escalation_id, now) if together
                   else caller_queue.claim_line(session, escalation_id, line, now))
        if not claimed:
            log.info("escalation %s: its staff line(s) ring already; nothing to do", escalation_id)
            return None
        if together:
            requests = [_staff_request(settings, clinic, escalation_id, n, number) for n, number in enumerate(numbers)]
        elif line >= len(numbers):  # lines were removed meanwhile: start the round again
            session.execute(update(Escalation).where(Escalation.id == escalation_id)
                            .values(ring_line=0, ring_call_sid=None, ring_at=None))
            return None
        else:
            request = _staff_request(settings, clinic, escalation_id, line, numbers[line])
    if together:
        return _ring_together(services, escalation_id, requests)
    try:
        sid = services.dialer.place_call(request)
    except (PermanentDialError, UncertainDialError) as exc:
        # That line cannot be rung (or may ring unseen: its answer will find another line
        # ringing and hang up): on to the next one, now (this job's id still blocks a new one).
        log.info("escalation %s: staff line %s not rung (%s)", escalation_id, line, type(exc).__name__)
        if _next_line(services, escalation_id, line, "dialing"):
            return ring_staff(clinic_id)
        return None
    except Exception:
        with services.sessions.begin() as session:  # never reached the carrier: try again
            session.execute(update(Escalation).where(Escalation.id == escalation_id, Escalation.ring_line == line,
                                                     Escalation.ring_call_sid == "dialing")
                            .values(ring_call_sid=None, ring_at=None))
        raise
    with services.sessions.begin() as session:
        session.execute(update(Escalation).where(Escalation.id == escalation_id, Escalation.ring_line == line,
                                                 Escalation.ring_call_sid == "dialing").values(ring_call_sid=sid))
    log.info("escalation %s: staff line %s rung (%s)", escalation_id, line, sid)
    return sid


def _staff_request(settings, clinic: Clinic | None, escalation_id: int, line: int, number: str) -> CallRequest:
    """The call that rings one staff line for a waiting caller. Staff answer to a person's voice:
    no answering-machine detection's dead air."""
    base = settings.public_base_url
    return CallRequest(to=number, from_=(clinic.phone if clinic else None) or settings.from_number,
                       url=f"{base}/twilio/voice/queue/staff/{escalation_id}/{line}",
                       status_callback=f"{base}/twilio/status/queue/{escalation_id}/{line}",
                       machine_detection=False)


def _ring_together(services, escalation_id: int, requests: list[CallRequest]) -> str | None:
    """Ring every line at once (the round is claimed); the first staff call's SID. A line the
    carrier refuses is skipped; when none could be rung for a passing reason, the claim is given
    back and the job tried again."""
    placed, passing = [], None
    for request in requests:
        try:
            placed.append(services.dialer.place_call(request))
        except (PermanentDialError, UncertainDialError) as exc:
            log.info("escalation %s: a staff line not rung (%s)", escalation_id, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the other lines still ring
            passing = exc
    if not placed and passing is not None:
        with services.sessions.begin() as session:
            session.execute(update(Escalation).where(Escalation.id == escalation_id,
                                                     Escalation.ring_call_sid == caller_queue.TOGETHER)
                            .values(ring_call_sid=None, ring_at=None))
        raise passing
    log.info("escalation %s: %s staff line(s) rung together", escalation_id, len(placed))
    return placed[0] if placed else None


def staff_call_ended(services, escalation_id: int, line: int, staff_sid: str) -> None:
    """The staff call ringing for a caller ended without taking them: ring the next line now;
    after the last one, the caller's next wait starts the round again."""
    if _next_line(services, escalation_id, line, staff_sid):
        with services.sessions() as session:
            ring_soon(services, session.scalar(select(Escalation.clinic_id).where(Escalation.id == escalation_id)))


def _next_line(services, escalation_id: int, line: int, staff_sid: str) -> bool:
    """Move a waiting caller on from `line`; True when another line of this round is to ring."""
    with services.sessions.begin() as session:
        escalation = session.get(Escalation, escalation_id)
        clinic = session.get(Clinic, escalation.clinic_id) if escalation and escalation.clinic_id else None
        lines = len(caller_queue.staff_numbers(session, clinic, services.settings.fallback_staff_number))
        return caller_queue.after_ring(session, escalation_id, line, staff_sid, lines) is not None


def delete_queue_soon(services, queue_sid: str) -> None:
    """After a caller left their queue: delete it at the carrier (Twilio keeps every queue until
    it is deleted, and each caller has one of their own)."""
    if not QUEUE_SID.fullmatch(queue_sid or ""):
        return
    try:
        enqueue_once(outbound_queue(services.redis), "outbound.staff_ringing.delete_queue", queue_sid,
                     f"delete-queue-{queue_sid}", f"delete queue {queue_sid} at the carrier",
                     Retry(max=3, interval=[60, 600, 3600]))
    except Exception as exc:  # noqa: BLE001 - an empty queue left at the carrier harms no caller
        log.warning("queue %s: deletion not queued (%s)", queue_sid, type(exc).__name__)


def delete_queue(queue_sid: str) -> bool:
    """The job: delete an empty queue at the carrier; False when it had none by that SID. A
    carrier that cannot answer raises, and the job is tried again later."""
    deleted = current_services().dialer.delete_queue(queue_sid)
    log.info("queue %s %s at the carrier", queue_sid, "deleted" if deleted else "was not")
    return deleted
