"""RQ jobs. Each takes ids, loads what it needs, and raises on failure so Retry applies."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict
from zoneinfo import ZoneInfo

from rq import get_current_job
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import joinedload, object_session

from ivr import calls, prompt_audio
from ivr.messaging import texts as messaging
from ivr.errors import PermanentDialError, UncertainDialError
from ivr.models import Appointment, Call, Clinic, Patient, Touch, touch_contact_id, utcnow
from ivr.services import current_services
from ivr.telephony import CallRequest
from outbound import reconciler
from outbound.hours import contact_time, parse_days
from outbound.planning import RECOVERY_FLOWS, RECOVERY_WINDOW, refill_not_wanted
from outbound.queueing import outbound_queue, schedule_next_reconcile
from outbound.texts import enqueue_text

log = logging.getLogger(__name__)
# Seconds a job may spend rendering a call's prompts (normally well under one): a synthesiser
# that hangs costs the call its local voice, not its place in the queue.
RENDER_BUDGET = 15.0
# Seconds ahead the periodic reconcile looks for planned touches without a job.
RECONCILE_HORIZON = 3600
# A job may start this much before its touch's due time (the scheduler's clock and ours).
DUE_SLACK = dt.timedelta(seconds=60)
# A clinic at its most calls in progress: the touch waits this long (reconcile queues it again).
BUSY_PAUSE = dt.timedelta(seconds=15)
# A touch counts as a call in progress this long after its last change at most (a lost final
# callback must not hold the clinic's calls back for good; reconcile settles it meanwhile).
IN_PROGRESS_WITHIN = dt.timedelta(hours=1)


def place_touch_call(touch_id: int) -> str | None:
    """Ring (or text) the patient for a planned touch; returns the call SID, or None when no call
    was placed.

    The call's prompts are rendered first, while the touch is still planned (a worker that dies
    while rendering leaves nothing in doubt). Then the touch is claimed in the database
    (planned -> dialing), so even a job that runs twice dials once. A touch by text opens its
    conversation and queues the reminder text in the claim's own transaction instead.
    """
    services = current_services()
    settings = services.settings
    _render_if_ringing(touch_id)
    with services.sessions.begin() as session:
        claimed = session.execute(
            update(Touch).where(Touch.id == touch_id, Touch.status == "planned")
            .values(status="dialing", attempts=Touch.attempts + 1, call_sid=None)).rowcount
        if not claimed:
            log.info("touch %s is not planned; nothing to dial", touch_id)
            return None
        touch = session.get(Touch, touch_id, options=[
            joinedload(Touch.patient).joinedload(Patient.clinic),
            joinedload(Touch.appointment).joinedload(Appointment.patient).joinedload(Patient.clinic)])
        # A reason never to ring (opted out, already cancelled...) settles it now, whatever the hour.
        reason = _reason_not_to_call(touch)
        if reason:
            touch.status, touch.last_error = "skipped", reason
            log.info("touch %s skipped: %s", touch_id, reason)
            return None
        later = _not_yet(session, touch)
        if later is not None:
            # Not due (moved), outside calling hours (a late queue, a retry), or the patient had
            # enough contact today: put it back for then; this claim was not an attempt.
            ring_at, why = later
            touch.status, touch.due_at, touch.last_error = "planned", ring_at, why
            touch.attempts -= 1
            log.info("touch %s: %s; due again at %s", touch_id, why, ring_at.isoformat())
            return None
        patient = touch.contact
        touch.patient = patient  # whom it reaches now: its appointment's patient, if it was handed over
        touch.dispatched_at = utcnow()
        if touch.channel == "sms":
            texts_to_send = messaging.start_reminder(session, touch_id, patient.clinic.phone or settings.from_number)
            touch.status, touch.last_error = "completed", None
        else:
            texts_to_send = None
            request = CallRequest(
                to=patient.phone, from_=patient.clinic.phone or settings.from_number,
                url=f"{settings.public_base_url}/twilio/voice/outbound/{touch_id}",
                # The attempt in the URL tells a late callback of an earlier attempt from this one's.
                status_callback=f"{settings.public_base_url}/twilio/status/outbound/{touch_id}/{touch.attempts}",
                fallback_url=f"{settings.public_base_url}/twilio/voice/fallback")
    if texts_to_send is not None:
        queue = outbound_queue(services.redis)
        for message_id in texts_to_send:
            enqueue_text(queue, message_id)
        log.info("touch %s: its text queued", touch_id)
        return None

    waited = services.call_pace.wait_turn()
    if waited > 1:
        log.info("touch %s waited %.1f s for the account's calls-per-second pace", touch_id, waited)
    try:
        sid = services.dialer.place_call(request)
    except PermanentDialError as exc:
        _release(touch_id, "failed", str(exc))
        log.warning("touch %s: carrier refused the call", touch_id)
        return None
    except UncertainDialError as exc:
        # The call may exist: never retry on our own. Its status callbacks (which carry the
        # touch id) will still record it if it does.
        _release(touch_id, "uncertain", str(exc))
        log.warning("touch %s: carrier may have placed the call; not retrying", touch_id)
        return None
    except Exception as exc:
        last_try = not _retries_left()
        _release(touch_id, "failed" if last_try else "planned", f"{type(exc).__name__}: {exc}"[:200])
        raise

    with services.sessions.begin() as session:
        # The call's row first, then the touch's: status callbacks lock in that order too, and
        # opposite orders would deadlock on PostgreSQL when a callback arrives this early.
        calls.open_outbound_call(session, sid, touch_id, status="queued",
                                 from_number=request.from_, to_number=request.to)
        # Forward only: the call's final status callback may already have closed the touch, or
        # planned it again for a retry (its SID, if any, the callback recorded itself).
        session.execute(update(Touch).where(Touch.id == touch_id, Touch.status == "dialing")
                        .values(status="placed", call_sid=sid, last_error=None))
    log.info("touch %s placed as call %s", touch_id, sid)
    return sid


def _render_if_ringing(touch_id: int) -> None:
    """Render the touch's prompts when the checks that follow are going to let it ring (what
    they would turn away is not worth rendering: the patient's details would sit on disk)."""
    services = current_services()
    with services.sessions() as session:
        touch = session.get(Touch, touch_id, options=[
            joinedload(Touch.patient).joinedload(Patient.clinic),
            joinedload(Touch.appointment).joinedload(Appointment.patient).joinedload(Patient.clinic)])
        if (touch is None or touch.status != "planned" or touch.channel != "voice" or _later_ring_time(touch)
                or touch.due_at > utcnow() + DUE_SLACK or _reason_not_to_call(touch)):
            return
        flow, context = calls.touch_context(session, touch_id)
    render_call_prompts(touch_id, flow, context)


def render_call_prompts(touch_id: int, flow: str, context: calls.CallContext) -> None:
    """Render every prompt the call may speak that is not in the cache yet, in the patient's
    language and rate, before the phone rings (webhooks only play what is there). A failure
    here never stops the call: those prompts are said by the carrier's voice instead."""
    services = current_services()
    cache = services.prompt_audio
    try:
        cache.prune()  # personal prompts of earlier calls are not kept
        report = prompt_audio.render_prompts(
            services.synthesizer, cache, context.catalogue, context.values,
            prompt_audio.voice_for(context.catalogue, context.speech_rate),
            prompt_audio.flow_prompt_keys(context.catalogue, flow), budget_seconds=RENDER_BUDGET)
    except Exception as exc:  # noqa: BLE001 - a call with <Say> beats no call
        log.warning("touch %s: prompts not rendered: %s", touch_id, type(exc).__name__)
        return
    log.info("touch %s: prompts rendered %d, cached %d, failed %d (%.2f s)", touch_id, report.made,
             report.cached, report.failed, report.render_seconds)


def _not_yet(session, touch: Touch) -> tuple[dt.datetime, str] | None:
    """When the touch may go instead of now, and why; None when it may go now."""
    now = utcnow()
    if touch.due_at > now + DUE_SLACK:
        return touch.due_at, "not due yet"  # its appointment moved, or it was planned again
    patient = touch.contact
    zone = ZoneInfo(patient.timezone or patient.clinic.timezone)
    today = now.astimezone(zone).date()
    ring_at = _later_ring_time(touch)
    if ring_at is not None:
        if patient.contact_not_before is not None and today < patient.contact_not_before:
            return ring_at, "before the patient's first day for outreach"
        if today.weekday() in parse_days(patient.no_contact_days):
            return ring_at, "a day the patient asked not to be contacted on"
        return ring_at, "outside calling hours"
    if touch.test_call:
        return None
    # The clinic's row before the patient's, always (two claims lock in the same order).
    return (_clinic_busy(session, touch, now) if touch.channel == "voice" else None) or \
        _daily_cap_reached(session, touch, now, zone)


def _clinic_busy(session, touch: Touch, now: dt.datetime) -> tuple[dt.datetime, str] | None:
    """A pause when the clinic has its most calls in progress. Its row is locked while they are
    counted, so claims of one clinic count in turn."""
    clinic = touch.contact.clinic
    session.execute(select(Clinic.id).where(Clinic.id == clinic.id).with_for_update())
    busy = session.scalar(
        select(func.count()).select_from(Touch).join(Touch.patient).where(
            Patient.clinic_id == clinic.id, Touch.channel == "voice", Touch.id != touch.id,
            Touch.status.in_(("dialing", "placed")), Touch.updated_at > now - IN_PROGRESS_WITHIN))
    if busy >= clinic.max_calls_in_progress:
        return now + BUSY_PAUSE, f"the clinic has {busy} calls in progress"
    return None


def _daily_cap_reached(session, touch: Touch, now: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, str] | None:
    """Tomorrow's first moment when the patient has had the clinic's most contacts today."""
    patient = touch.contact
    today = now.astimezone(zone).date()
    midnight = dt.datetime.combine(today, dt.time(0), zone).astimezone(dt.timezone.utc)
    # The patient's row is locked while their contacts today are counted: two workers with two
    # touches for one patient count one after the other. Every call counts (a retry rings the
    # phone again), and every text a touch sent.
    session.execute(select(Patient.id).where(Patient.id == patient.id).with_for_update())
    contact_id = touch_contact_id()
    calls_today = session.scalar(
        select(func.count()).select_from(Call).join(Touch, Call.touch_id == Touch.id).outerjoin(Touch.appointment)
        .where(contact_id == patient.id, Touch.test_call.is_(False), Call.created_at >= midnight))
    # Texts sent, and calls being dialled right now (their call is not recorded until the
    # carrier answers the dial, and another worker must count them meanwhile).
    texts_and_dialling = session.scalar(
        select(func.count()).select_from(Touch).outerjoin(Touch.appointment).where(
            contact_id == patient.id, Touch.id != touch.id, Touch.test_call.is_(False),
            Touch.dispatched_at >= midnight, or_(Touch.channel == "sms", Touch.status == "dialing")))
    if calls_today + texts_and_dialling >= patient.clinic.daily_contact_cap:
        tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), zone).astimezone(dt.timezone.utc)
        return contact_time(patient, tomorrow), "daily contact cap reached"
    return None


def _later_ring_time(touch: Touch) -> dt.datetime | None:
    """When the touch may ring, if not now (outside the patient's calling hours)."""
    if touch.test_call and _sandbox_carrier():
        return None  # a sandbox phone may ring at any hour
    now = utcnow()
    ring_at = contact_time(touch.contact, now)
    return ring_at if ring_at > now else None


def _sandbox_carrier() -> bool:
    """Whether calls go to the sandbox carrier (never to a real phone), outside production."""
    settings = current_services().settings
    return settings.carrier == "sandbox" and not settings.is_production


def _retries_left() -> int:
    """Retries RQ still has for the running job (0 outside RQ: nothing will try again)."""
    job = get_current_job()
    return (job.retries_left or 0) if job is not None else 0


def _reason_not_to_call(touch: Touch) -> str | None:
    """Why this touch must not ring now, or None."""
    if touch.test_call and not _sandbox_carrier():
        # A test call skips calling hours and status checks: only a sandbox phone may get one.
        return "a test call, and this server's carrier is not the sandbox"
    patient = touch.contact
    if patient.opted_out_at is not None:
        return "patient opted out"
    if messaging.opted_out(object_session(touch), patient.clinic_id, patient.phone):
        return "the number opted out"  # by text, perhaps before this patient had it
    step = touch.campaign_step
    if step is not None and step.campaign.require_consent and patient.consent_at is None:
        return "no consent recorded"
    if touch.prescription_id is not None:  # a refill prompt: while the refill is due, and wanted
        return refill_not_wanted(object_session(touch), touch.id, utcnow()) or _channel_problem(touch, patient)
    appointment = touch.appointment
    if touch.flow in RECOVERY_FLOWS.values():  # after a missed visit, for a week
        if appointment.status != "no_show":
            return f"appointment is {appointment.status}"
        if appointment.starts_at < utcnow() - RECOVERY_WINDOW:
            return "the missed visit is more than a week old"
        return _channel_problem(touch, patient)
    if appointment.starts_at <= utcnow():
        return "appointment has already started"
    # A sandbox test call may be repeated whatever the patient answered before.
    if appointment.status != "booked" and not touch.test_call:
        return f"appointment is {appointment.status}"
    return _channel_problem(touch, patient)


def _channel_problem(touch: Touch, patient: Patient) -> str | None:
    """Why the touch's channel cannot reach the patient, or None."""
    if touch.channel not in ("voice", "sms"):
        return f"channel {touch.channel} is neither voice nor sms"
    if touch.channel == "sms":
        return messaging.textable(patient.phone)
    return None


def _release(touch_id: int, status: str, error: str) -> None:
    """Settle a touch whose dial did not return a call, unless the call's own status callbacks
    (which carry the touch id) settled it meanwhile."""
    services = current_services()
    with services.sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == touch_id, Touch.status == "dialing")
                        .values(status=status, last_error=error[:200], updated_at=utcnow()))


def reconcile_horizon(settings) -> dt.timedelta:
    """How far ahead the worker queues planned touches (the rest wait in the database)."""
    return dt.timedelta(seconds=max(RECONCILE_HORIZON, 2 * settings.reconcile_seconds))


def reconcile_outbound() -> dict:
    """The worker's periodic reconcile (outbound/reconciler.py). It schedules its own next run
    before anything else, so that a run that fails does not end the chain."""
    services = current_services()
    schedule_next_reconcile(outbound_queue(services.redis), services.settings.reconcile_seconds)
    # Touches due later wait in the database (or kept a job given earlier); each is queued when it
    # comes within the horizon: the run stays cheap, and Redis small, however large the campaign.
    report = reconciler.reconcile_all(services, utcnow(), reconcile_horizon(services.settings))
    # Quiet when there was nothing to do: this runs every minute.
    log.log(logging.INFO if report.queued or report.stuck or report.settled or report.unsettled
            or report.recordings or report.sweeps or report.texts else logging.DEBUG, "reconcile: %s", report.summary())
    return asdict(report)
