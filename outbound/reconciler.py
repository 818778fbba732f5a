"""Keep the queue and the calls in step with the database. Every worker runs this on a timer
(see `reconcile_outbound` in jobs.py); `ivr reminders reconcile` runs it by hand."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ivr import calls
from ivr.errors import CarrierError, UnknownToCarrier
from ivr.models import Call, CallEvent, CampaignStep, Clinic, Message, Patient, Touch, touch_contact_id, utcnow
from ivr.services import Services
from ivr.telephony import CallStatus, CarrierCall
from outbound import planning
from outbound.queueing import outbound_queue, reconcile
from outbound.recordings import requeue_deletions, requeue_sweeps
from ivr.inbound import queue as caller_queue
from outbound import staff_ringing
from outbound.callbacks import fail_stuck_call_backs, requeue_call_backs
from outbound.event_delivery import requeue_deliveries
from outbound.texts import requeue_text_backs, requeue_texts

log = logging.getLogger(__name__)
# Calls settled per run, oldest first: each question may wait for the carrier's timeout (10 s),
# and what is left waits for the next run.
SETTLE_BATCH = 20
# An uncertain touch is settled through the carrier's call list only after this long since it was
# dispatched: the dial's own request has timed out by then (10 s), and the carrier lists the call.
UNCERTAIN_AFTER = dt.timedelta(minutes=2)
# Calls created this long before the dispatch time are looked at too (the two clocks differ).
LIST_MARGIN = dt.timedelta(seconds=30)
# A missed-call text decided later than this would reach the caller too late to help.
TEXT_BACK_WINDOW = dt.timedelta(hours=2)


@dataclass(frozen=True)
class Report:
    """What one reconcile found and did."""

    planned: int = 0     # planned touches
    queued: int = 0      # of which had no live job and were queued again
    live: int = 0        # of which were queued already
    stuck: int = 0       # touches a dead worker left dialling, now uncertain
    settled: int = 0     # calls whose lost final status was fetched from the carrier
    unsettled: int = 0   # calls the carrier could not tell us about this time
    unknown: int = 0     # calls the carrier has never heard of: closed here, touch left uncertain
    recordings: int = 0  # recordings still at the carrier whose deletion was queued again
    sweeps: int = 0      # ended calls whose check for recordings left at the carrier was queued
    texts: int = 0       # texts (and missed-call text decisions) whose lost jobs were queued again
    call_backs: int = 0  # planned call backs (virtual hold) whose lost jobs were queued again
    call_backs_failed: int = 0  # call backs stuck dialling for an hour, left to people as tasks
    rings: int = 0       # callers waiting in the queue for whom no staff line was being rung
    found: int = 0       # uncertain touches whose call the carrier lists: attached and followed
    redialled: int = 0   # uncertain touches the carrier never placed: planned to dial again
    unasked: int = 0     # uncertain touches whose calls the carrier could not list this time
    webhooks: int = 0    # webhook deliveries to the clinic's systems whose lost jobs were queued again

    def summary(self) -> str:
        """One line for people (the command's output, the worker's log)."""
        text = f"{self.planned} planned call(s): {self.queued} queued again, {self.live} already queued"
        if self.stuck:
            text += f"; {self.stuck} left uncertain after a worker stopped while dialling"
        if self.settled:
            text += f"; {self.settled} call(s) settled from the carrier"
        if self.unsettled:
            text += f"; {self.unsettled} call(s) the carrier could not tell about (asked again next time)"
        if self.unknown:
            text += f"; {self.unknown} call(s) unknown to the carrier, closed and left for people"
        if self.recordings:
            text += f"; deletion of {self.recordings} recording(s) at the carrier queued again"
        if self.sweeps:
            text += f"; {self.sweeps} ended call(s) to check for recordings left at the carrier"
        if self.texts:
            text += f"; {self.texts} text(s) queued again"
        if self.call_backs:
            text += f"; {self.call_backs} call back(s) queued again"
        if self.call_backs_failed:
            text += f"; {self.call_backs_failed} call back(s) stuck, left to people as tasks"
        if self.rings:
            text += f"; staff rung again for {self.rings} caller(s) waiting in the queue"
        if self.found:
            text += f"; {self.found} uncertain call(s) found at the carrier"
        if self.redialled:
            text += f"; {self.redialled} uncertain call(s) the carrier never placed, to dial again"
        if self.unasked:
            text += f"; {self.unasked} uncertain call(s) the carrier could not list (asked again next time)"
        if self.webhooks:
            text += f"; {self.webhooks} webhook delivery(ies) queued again"
        return text


def reconcile_all(services: Services, now: dt.datetime, horizon: dt.timedelta | None = None) -> Report:
    """Settle touches a dead worker left dialling and calls whose final status callback was lost,
    then give every planned touch (due within `horizon`, if given), and every recording not yet
    deleted at the carrier, a live job."""
    with services.sessions.begin() as session:
        stuck = planning.settle_stuck_dialing(session, now)
    found, redialled, unasked = settle_uncertain(services, now)
    cutoff = now - dt.timedelta(seconds=services.settings.stale_call_seconds)
    settled, unsettled, unknown = settle_stale_calls(services, cutoff)
    queue = outbound_queue(services.redis)
    with services.sessions() as session:
        touches = reconcile(queue, planning.touches_to_queue(session, None if horizon is None else now + horizon))
        recordings, _ = requeue_deletions(queue, session)
        sweeps = requeue_sweeps(queue, session)
        lost_texts = requeue_texts(queue, session) + requeue_text_backs(queue, session, now - TEXT_BACK_WINDOW)
        call_backs = requeue_call_backs(queue, session)
        rings = staff_ringing.requeue(queue, session)
        webhook_deliveries = requeue_deliveries(queue, session)
    with services.sessions.begin() as session:
        call_backs_failed = fail_stuck_call_backs(session, cutoff)
        caller_queue.expire_stale(session, now)
    return Report(touches.planned, touches.queued, touches.live, stuck, settled, unsettled, unknown, recordings, sweeps, lost_texts,
                  call_backs, call_backs_failed, rings, found, redialled, unasked, webhook_deliveries)


def settle_uncertain(services: Services, now: dt.datetime) -> tuple[int, int, int]:
    """Settle touches left uncertain (the worker died mid-dial, or the carrier's answer to the
    dial was lost) by asking the carrier for calls to the patient from the clinic's number since
    the touch was dispatched: one found is attached to the touch and followed like any call; none
    found means the call was never placed, so the touch is planned to dial again. Returns (found,
    planned again, could not ask)."""
    with services.sessions() as session:
        uncertain = session.execute(
            select(Touch.id, Touch.dispatched_at, Patient.phone, Clinic.phone,
                   func.coalesce(CampaignStep.max_attempts, 1))
            .outerjoin(Touch.appointment).join(Patient, Patient.id == touch_contact_id()).join(Patient.clinic)
            .outerjoin(CampaignStep, Touch.campaign_step_id == CampaignStep.id)
            .where(Touch.status == "uncertain", Touch.call_sid.is_(None), Touch.channel == "voice",
                   Touch.dispatched_at < now - UNCERTAIN_AFTER)
            .order_by(Touch.dispatched_at).limit(SETTLE_BATCH)).all()
    found = redialled = unasked = 0
    # Two touches in doubt for one number cannot tell whose a listed call is: a person decides.
    in_doubt = {phone for phone, count in _numbers_in_doubt(services, uncertain) if count > 1}
    for touch_id, dispatched_at, to, clinic_phone, most_calls in uncertain:
        if to in in_doubt:
            log.warning("touch %s: another call to the same number is in doubt too; left for a person", touch_id)
            continue
        from_ = clinic_phone or services.settings.from_number
        try:
            listed = services.dialer.find_calls(to, from_, dispatched_at - LIST_MARGIN)
        except CarrierError as exc:
            unasked += 1
            log.warning("touch %s: the carrier could not list its calls (%s); asking again next time", touch_id, exc)
            continue
        with services.sessions.begin() as session:
            owners = dict(session.execute(select(Call.call_sid, Call.touch_id).where(
                Call.call_sid.in_([call.sid for call in listed]))).all())
            # A call we know of is ours only if it is this touch's (another touch's is not).
            ours = [call for call in listed if owners.get(call.sid, touch_id) == touch_id]
            if ours:
                found += _attach(session, touch_id, ours[0], from_, to)
            else:
                redialled += _dial_again(session, touch_id, max(most_calls, 2), now)
    return found, redialled, unasked


def _numbers_in_doubt(services: Services, uncertain) -> list[tuple[str, int]]:
    """How many touches in doubt each of these numbers has (any age)."""
    phones = sorted({row[2] for row in uncertain})
    if not phones:
        return []
    with services.sessions() as session:
        return session.execute(
            select(Patient.phone, func.count()).select_from(Touch).outerjoin(Touch.appointment)
            .join(Patient, Patient.id == touch_contact_id())
            .where(Touch.status == "uncertain", Touch.call_sid.is_(None), Touch.channel == "voice",
                   Patient.phone.in_(phones)).group_by(Patient.phone)).all()


def _dial_again(session: Session, touch_id: int, most_calls: int, now: dt.datetime) -> bool:
    """Plan an uncertain touch the carrier never placed to be dialled again, within the calls its
    step allows (at least one more: the lost dial rang nobody); past them, it fails for a person
    to look at rather than be dialled on every run. True when it will be dialled again."""
    unsettled = (Touch.id == touch_id, Touch.status == "uncertain", Touch.call_sid.is_(None))
    again = session.execute(update(Touch).where(*unsettled, Touch.attempts < most_calls).values(
        status="planned", due_at=now, updated_at=now,
        last_error="the carrier never placed the call; dialling again")).rowcount
    if not again:
        session.execute(update(Touch).where(*unsettled).values(
            status="failed", updated_at=now, last_error="the carrier never placed its calls; left for a person"))
    return bool(again)


def _attach(session: Session, touch_id: int, call: CarrierCall, from_: str, to: str) -> bool:
    """Give an uncertain touch the call the carrier placed for it, then apply how the call stands
    (the status callbacks' own path, which closes the touch when the call has ended). The call's
    row is locked before the touch's, the order status callbacks lock them in."""
    calls.open_outbound_call(session, call.sid, touch_id, status="queued", from_number=from_, to_number=to)
    calls.lock_call(session, call.sid)
    attached = session.execute(
        update(Touch).where(Touch.id == touch_id, Touch.status == "uncertain", Touch.call_sid.is_(None))
        .values(status="placed", call_sid=call.sid, last_error=None, updated_at=utcnow())).rowcount
    if not attached:
        return False
    if call.status in calls.STATUS_RANK:
        calls.apply_status(session, call.sid, call.status, call.answered_by, touch_id=touch_id)
    call_id = session.scalar(select(Call.id).where(Call.call_sid == call.sid))
    session.add(CallEvent(call_id=call_id, kind="settled", detail={"source": "carrier call list",
                                                                   "status": call.status}))
    log.info("touch %s: its uncertain call is %s at the carrier (%s)", touch_id, call.sid, call.status)
    return True


def settle_stale_calls(services: Services, began_before: dt.datetime) -> tuple[int, int, int]:
    """Ask the carrier how each call stands that is not final and began before `began_before`,
    and apply its answer as a status callback would. Returns (settled, could not be asked,
    unknown to the carrier)."""
    with services.sessions() as session:
        stale = session.execute(
            select(Call.call_sid, Call.touch_id)
            .where(Call.status.not_in(calls.TERMINAL), Call.ended_at.is_(None), Call.created_at < began_before)
            .order_by(Call.created_at).limit(SETTLE_BATCH)).all()
    settled = failed = unknown = 0
    for sid, touch_id in stale:
        try:
            fetched = services.dialer.call_status(sid)
        except UnknownToCarrier:
            unknown += _close_unknown(services, sid, touch_id)
            continue
        except CarrierError as exc:
            failed += 1
            log.warning("call %s: the carrier could not say how it stands (%s); asking again next time",
                        sid, exc)
            continue
        settled += _apply_fetched(services, sid, touch_id, fetched)
    return settled, failed, unknown


def _close_unknown(services: Services, sid: str, touch_id: int | None) -> bool:
    """A call the carrier has never heard of (another account, a sandbox's call, a purge): close
    it here so it is not asked about again, and leave its touch uncertain for a person."""
    with services.sessions.begin() as session:
        call = session.scalars(select(Call).where(Call.call_sid == sid).with_for_update()).one()
        if call.ended_at is not None:
            return False
        call.ended_at, call.outcome = utcnow(), call.outcome or "unknown_to_carrier"
        session.add(CallEvent(call_id=call.id, kind="settled", detail={"source": "carrier", "status": "unknown"}))
        if touch_id is not None:
            session.execute(update(Touch).where(Touch.id == touch_id, Touch.status.in_(("dialing", "placed")))
                            .values(status="uncertain", last_error="the carrier has no record of the call"))
    log.warning("call %s: unknown to the carrier; closed, its touch left for a person", sid)
    return True


def _apply_fetched(services: Services, sid: str, touch_id: int | None, fetched: CallStatus) -> bool:
    """Record the carrier's answer through the status callbacks' own forward-only path (which
    closes the touch with the call), noting in the audit trail where it came from."""
    if fetched.status not in calls.STATUS_RANK:
        log.warning("call %s: the carrier says %r, not a call status we know", sid, fetched.status)
        return False
    with services.sessions.begin() as session:
        if not calls.apply_status(session, sid, fetched.status, fetched.answered_by, touch_id=touch_id):
            return False
        call_id = session.scalar(select(Call.id).where(Call.call_sid == sid))
        session.add(CallEvent(call_id=call_id, kind="settled", detail={
            "source": "carrier", "status": fetched.status, "duration": fetched.duration}))
    log.info("call %s settled from the carrier: %s", sid, fetched.status)
    return True


@dataclass(frozen=True)
class NotFinal:
    """A touch or call that should have ended by now (ids and SIDs only: no PHI)."""

    kind: str                 # touch, call or text
    id: int
    status: str
    age: dt.timedelta         # since it was due (planned touch), claimed or placed, or began
    sid: str | None = None


def not_final(session: Session, now: dt.datetime, after: dt.timedelta) -> list[NotFinal]:
    """Touches overdue for dialling or left dialling/placed, and calls not final, for longer
    than `after`."""
    cutoff = now - after
    touches = session.execute(
        select(Touch.id, Touch.status, Touch.due_at, Touch.updated_at)
        .where(or_(and_(Touch.status == "planned", Touch.due_at < cutoff),
                   and_(Touch.status.in_(("dialing", "placed")), Touch.updated_at < cutoff)))
        .order_by(Touch.id)).all()
    stale_texts = session.execute(
        select(Message.id, Message.status, Message.created_at)
        .where(Message.status.in_(("planned", "submitting", "uncertain")), Message.created_at < cutoff)
        .order_by(Message.id)).all()
    stale_calls = session.execute(
        select(Call.id, Call.status, Call.created_at, Call.call_sid)
        .where(Call.status.not_in(calls.TERMINAL), Call.ended_at.is_(None), Call.created_at < cutoff)
        .order_by(Call.id)).all()
    return ([NotFinal("touch", t.id, t.status, now - (t.due_at if t.status == "planned" else t.updated_at))
             for t in touches]
            + [NotFinal("call", c.id, c.status, now - c.created_at, c.call_sid) for c in stale_calls]
            + [NotFinal("text", m.id, m.status, now - m.created_at) for m in stale_texts])
