"""The caller queue: who waits, in what order and for how long, and which staff call may take whom.

Each caller waits in a Twilio queue of their own (`<Enqueue>ivr-<CallSid></Enqueue>`), so the
staff member who takes them (`<Dial><Queue>`) gets exactly the caller their whisper described.
The clinic's line is the database's: escalations of the clinic whose `queue_status` is
`waiting`, in the order they started. Staff lines are rung for the first caller in line only,
one line after another, or all at once where the clinic rings them together
(outbound/staff_ringing.py); when every line was tried, the round starts again at the first
caller's next wait, until the clinic's longest wait. Callers behind them wait
their turn, told their place.

queue_status: waiting -> taken (staff pressed 1) | call_back (the caller pressed 1) |
unanswered (the longest wait passed) | gone (the caller hung up). Every change is a
compare-and-set in one UPDATE, so a replay or a race changes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ivr.models import Call, CallEvent, Clinic, Escalation, StaffLine

WAITING = "waiting"
# How far back answered escalations tell the expected wait, and how many of them at most.
WAIT_HISTORY = dt.timedelta(days=14)
WAIT_SAMPLE = 50
# A caller still 'waiting' this long past the clinic's longest wait lost their final status
# callback: they are not in line any more (reconcile marks them gone).
STALE_AFTER = dt.timedelta(minutes=10)
# A staff line claimed this long ago whose call never reported an end (a worker died while
# dialling, a lost status callback) is taken as not ringing: the next line is rung.
RING_STALE = dt.timedelta(minutes=2)
# Ringing every line at once: a round lasts this long (a staff phone rings for up to a minute,
# then its whisper), and the first caller's next wait after it rings them all again.
TOGETHER_ROUND = dt.timedelta(seconds=90)
TOGETHER = "together"   # ring_call_sid while every line rings at once
# Staff took a caller but the carrier has not bridged them this long after (staff hung up first):
# the caller leaves the queue and is offered a call back or a message.
TAKEN_GRACE = dt.timedelta(seconds=30)
# Twilio's QueueResult values.
_ANSWERED_RESULTS = frozenset({"bridged", "bridging-in-process"})
QUEUE_RESULTS = frozenset({"bridged", "bridging-in-process", "queue-full", "redirected", "hangup", "error",
                           "system-error", "leave"})


def queue_name(call_sid: str) -> str:
    """The Twilio queue a caller waits in: their own (names are at most 64 characters)."""
    return f"ivr-{call_sid}"


def escalation_of_call(session: Session, call_sid: str) -> Escalation | None:
    """The escalation of a caller's call (one per call: escalation.call_id is unique)."""
    return session.scalars(select(Escalation).join(Call, Call.id == Escalation.call_id)
                           .where(Call.call_sid == call_sid)).one_or_none()


def _in_line(clinic_id: int | None, longest: int, now: dt.datetime):
    """The condition of a clinic's callers still in line (not stale)."""
    return and_(Escalation.clinic_id == clinic_id, Escalation.queue_status == WAITING,
                Escalation.started_at >= now - dt.timedelta(seconds=longest) - STALE_AFTER)


def longest_wait(session: Session, clinic_id: int | None) -> int:
    """The clinic's longest wait in the queue, in seconds."""
    return session.scalar(select(Clinic.queue_max_wait).where(Clinic.id == clinic_id)) or 0


def place_in_line(session: Session, escalation: Escalation, now: dt.datetime) -> int:
    """1 for the caller staff are rung for now; the others wait behind in the order they came."""
    earlier = or_(Escalation.started_at < escalation.started_at,
                  and_(Escalation.started_at == escalation.started_at, Escalation.id < escalation.id))
    count = session.scalar(select(func.count()).select_from(Escalation).where(
        _in_line(escalation.clinic_id, longest_wait(session, escalation.clinic_id), now),
        Escalation.id != escalation.id, earlier))
    return int(count or 0) + 1


def first_in_line(session: Session, clinic_id: int, now: dt.datetime) -> Escalation | None:
    """The clinic's caller that staff lines are rung for."""
    return session.scalars(select(Escalation).where(_in_line(clinic_id, longest_wait(session, clinic_id), now))
                           .order_by(Escalation.started_at, Escalation.id).limit(1)).first()


def expected_wait_minutes(session: Session, clinic_id: int | None, place: int, now: dt.datetime) -> int | None:
    """About how long until staff take the caller: their place times the median wait of the
    clinic's callers taken lately; None when there is no history to tell."""
    waits = session.execute(select(Escalation.started_at, Escalation.answered_at).where(
        Escalation.clinic_id == clinic_id, Escalation.queue_status == "taken",
        Escalation.started_at >= now - WAIT_HISTORY).order_by(Escalation.id.desc()).limit(WAIT_SAMPLE)).all()
    seconds = [(answered - started).total_seconds() for started, answered in waits if answered and started]
    if not seconds:
        return None
    return max(1, math.ceil(place * statistics.median(seconds) / 60))


def staff_numbers(session: Session, clinic: Clinic | None, fallback: str) -> list[str]:
    """The numbers rung for a queued caller, in order: the clinic's staff phone (else the
    configured fallback), then its other staff lines."""
    first = (clinic.staff_phone if clinic else None) or fallback
    others = list(session.scalars(select(StaffLine.phone).where(StaffLine.clinic_id == clinic.id)
                                  .order_by(StaffLine.position))) if clinic else []
    return [n for n in (first, *others) if n]


def stop_waiting(session: Session, escalation_id: int, status: str, **values) -> bool:
    """waiting -> status (call_back, unanswered, gone); False when it was no longer waiting."""
    return session.execute(update(Escalation).where(Escalation.id == escalation_id,
                                                    Escalation.queue_status == WAITING)
                           .values(queue_status=status, **values)).rowcount == 1


def choose_call_back(session: Session, escalation_id: int, now: dt.datetime) -> bool:
    """The caller pressed 1 while waiting: they stop waiting and their call back is planned at
    once, so it stands even if they hang up before the carrier reports that they left."""
    return stop_waiting(session, escalation_id, "call_back", callback_status="planned", outcome="call_back",
                        ended_at=now)


def claim_line(session: Session, escalation_id: int, line: int, now: dt.datetime) -> bool:
    """Claim the ringing of `line` for a waiting caller (ring_call_sid NULL -> 'dialing'), or
    take over a claim that went stale; False when it is rung already or the caller left."""
    return session.execute(update(Escalation).where(
        Escalation.id == escalation_id, Escalation.queue_status == WAITING, Escalation.ring_line == line,
        or_(Escalation.ring_call_sid.is_(None), Escalation.ring_at < now - RING_STALE))
        .values(ring_call_sid="dialing", ring_at=now)).rowcount == 1


def claim_all_lines(session: Session, escalation_id: int, now: dt.datetime) -> bool:
    """Claim the ringing of every line at once for a waiting caller: when none rings for them, or
    the last round is over; False when a round is under way or the caller left."""
    return session.execute(update(Escalation).where(
        Escalation.id == escalation_id, Escalation.queue_status == WAITING,
        or_(Escalation.ring_call_sid.is_(None),
            and_(Escalation.ring_call_sid == TOGETHER, Escalation.ring_at < now - TOGETHER_ROUND),
            and_(Escalation.ring_call_sid != TOGETHER, Escalation.ring_at < now - RING_STALE)))
        .values(ring_line=0, ring_call_sid=TOGETHER, ring_at=now)).rowcount == 1


def _rings_in_order(escalation_id: int, line: int, staff_sid: str):
    """The condition that this staff call is the one ringing line `line` for the waiting caller
    (it may answer before the job has noted its SID: 'dialing' counts as its own)."""
    return and_(Escalation.id == escalation_id, Escalation.queue_status == WAITING, Escalation.ring_line == line,
                Escalation.ring_call_sid.in_((staff_sid, "dialing")))


def _rings(escalation_id: int, line: int, staff_sid: str):
    """The condition that this staff call rings for the waiting caller: the line rung in order,
    or any line while every line rings at once."""
    return or_(_rings_in_order(escalation_id, line, staff_sid),
               and_(Escalation.id == escalation_id, Escalation.queue_status == WAITING,
                    Escalation.ring_call_sid == TOGETHER))


def rings_for(session: Session, escalation_id: int, line: int, staff_sid: str) -> bool:
    """Whether this staff call is the one ringing for the waiting caller."""
    return session.scalar(select(func.count()).select_from(Escalation)
                          .where(_rings(escalation_id, line, staff_sid))) == 1


def take(session: Session, escalation_id: int, line: int, staff_sid: str, staff_phone: str | None,
         now: dt.datetime) -> str | None:
    """Staff pressed 1 on the call ringing line `line` for this caller: the caller is theirs
    (the escalation answered, the caller's call transferred, a `staff` event on it). The queue to
    dial, or None when the caller is no longer waiting or another call rings for them."""
    taken = session.execute(update(Escalation).where(_rings(escalation_id, line, staff_sid))
                            .values(queue_status="taken", outcome="answered", answered_at=now, ended_at=now,
                                    staff_phone=staff_phone, ring_line=line, ring_call_sid=staff_sid)).rowcount
    if not taken:
        return None
    call_id = session.scalar(select(Escalation.call_id).where(Escalation.id == escalation_id))
    session.execute(update(Call).where(Call.id == call_id, Call.outcome.is_(None)).values(outcome="transferred"))
    session.add(CallEvent(call_id=call_id, at=now, kind="staff", detail={"accepted": True}))
    return queue_name(session.scalar(select(Call.call_sid).where(Call.id == call_id)))


def note_pass(session: Session, escalation_id: int, line: int, staff_sid: str, now: dt.datetime) -> None:
    """Staff passed (2, or no key) on the call ringing for this caller: noted on the caller's call."""
    if rings_for(session, escalation_id, line, staff_sid):
        call_id = session.scalar(select(Escalation.call_id).where(Escalation.id == escalation_id))
        session.add(CallEvent(call_id=call_id, at=now, kind="staff", detail={"accepted": False}))


def after_ring(session: Session, escalation_id: int, line: int, staff_sid: str, lines: int) -> int | None:
    """The staff call ringing line `line` for a waiting caller ended without taking them: the
    next line to ring now, or None: the round is over (it starts again at the caller's next
    wait), or that call was not the one ringing for them (a duplicate callback, or the caller
    left or was taken meanwhile) and nothing changed."""
    following = line + 1 if line + 1 < lines else 0
    # Lines rung together end their round by time (TOGETHER_ROUND): one call's end changes nothing.
    moved = session.execute(update(Escalation).where(_rings_in_order(escalation_id, line, staff_sid))
                            .values(ring_line=following, ring_call_sid=None, ring_at=None)).rowcount
    return following if moved and following else None


def left(session: Session, call_sid: str, queue_result: str) -> str:
    """How the caller left their queue, as the flow hears it (call_flows.QUEUE_RESULTS), and the
    escalation settled to match."""
    escalation = escalation_of_call(session, call_sid)
    status = escalation.queue_status if escalation else None
    if queue_result in _ANSWERED_RESULTS:
        return "answered"
    if status == "call_back":  # planned when they pressed 1, whether or not they hung up since
        return "call_back"
    if escalation is not None and status == "taken":
        # Staff took them but they were never bridged (one side hung up first): not answered.
        hung_up = queue_result == "hangup"
        session.execute(update(Escalation).where(Escalation.id == escalation.id, Escalation.queue_status == "taken")
                        .values(queue_status="gone" if hung_up else "unanswered",
                                outcome="abandoned" if hung_up else None, answered_at=None,
                                ended_at=escalation.ended_at if hung_up else None, staff_phone=None))
        session.execute(update(Call).where(Call.id == escalation.call_id, Call.outcome == "transferred")
                        .values(outcome="hung_up" if hung_up else None))
        return "hangup" if hung_up else "unanswered"
    if queue_result == "hangup":
        if escalation is not None:
            stop_waiting(session, escalation.id, "gone")
        return "hangup"
    if escalation is not None:
        stop_waiting(session, escalation.id, "unanswered")
    return "unanswered"


def waiting_too_long(session: Session, escalation: Escalation, queue_seconds: int) -> bool:
    """Whether the caller has waited the clinic's longest wait: then they stop waiting (False
    when staff took them meanwhile: they are being put through)."""
    if queue_seconds < longest_wait(session, escalation.clinic_id):
        return False
    return stop_waiting(session, escalation.id, "unanswered")


def taken_too_long(escalation: Escalation, now: dt.datetime) -> bool:
    """Whether a caller staff took has still not been bridged well after staff pressed 1."""
    return escalation.answered_at is None or now - escalation.answered_at >= TAKEN_GRACE


def clinics_waiting(session: Session, now: dt.datetime) -> list[int]:
    """Clinics with callers in line (for reconcile: each needs its staff lines rung)."""
    return list(session.scalars(select(Escalation.clinic_id).where(
        Escalation.queue_status == WAITING, Escalation.clinic_id.is_not(None),
        Escalation.started_at >= now - dt.timedelta(hours=2)).distinct()))


def expire_stale(session: Session, now: dt.datetime) -> int:
    """Callers left 'waiting' long past their clinic's longest wait (their final status never
    came) are gone: they no longer count in anyone's place, and nobody is rung for them."""
    rows = session.execute(select(Escalation.id, Escalation.started_at, Clinic.queue_max_wait)
                           .join(Clinic, Clinic.id == Escalation.clinic_id)
                           .where(Escalation.queue_status == WAITING)).all()
    return sum(stop_waiting(session, escalation_id, "gone") for escalation_id, started, longest in rows
               if started < now - dt.timedelta(seconds=longest or 0) - STALE_AFTER)
