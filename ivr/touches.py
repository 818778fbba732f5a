"""What a touch's call, or a change to its appointment, means for the touch: done, tried again
later, followed by a text, or no longer wanted. Runs inside the caller's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from ivr.models import Appointment, CampaignStep, Prescription, Touch

# The text that follows a call flow that never reached the patient.
FALLBACK_TEXTS = {"reminder": "text_reminder", "no_show": "text_no_show", "refill": "text_refill"}
# A touch whose call is still ours to settle: a later callback for an earlier attempt is not.
IN_FLIGHT = ("dialing", "placed", "uncertain")


def call_result(status: str, answered_by: str | None) -> str:
    """What a finished call came to: completed, machine, or a status that reached no one."""
    if status != "completed":
        return status
    if answered_by and (answered_by.startswith("machine") or answered_by == "fax"):
        return "machine"
    return "completed"


def after_call(connection: Connection, touch_id: int, call_sid: str, status: str, answered_by: str | None,
               now: dt.datetime, attempt: int | None = None) -> str | None:
    """Settle a touch whose call ended: completed, unreached, or planned again for a retry its
    campaign step allows (plus a text when a step with a fallback gives up). Returns the touch's
    new status, or None when the touch had moved on already or the call is not its current one
    (a late callback of an earlier attempt must not settle the attempt ringing now)."""
    touch = connection.execute(
        select(Touch.status, Touch.attempts, Touch.step, Touch.test_call, Touch.channel, Touch.appointment_id,
               Touch.patient_id, Touch.prescription_id, Touch.refill_due_on, Touch.call_sid, Touch.flow,
               CampaignStep.id.label("step_id"), CampaignStep.retry_on, CampaignStep.max_attempts, CampaignStep.retry_minutes,
               CampaignStep.fallback_sms)
        .outerjoin(CampaignStep, Touch.campaign_step_id == CampaignStep.id)
        .where(Touch.id == touch_id).with_for_update(of=Touch)).mappings().one_or_none()
    if touch is None or touch["status"] not in IN_FLIGHT or touch["call_sid"] not in (None, call_sid):
        return None
    if touch["call_sid"] is None and attempt is not None and attempt != touch["attempts"]:
        return None  # an earlier attempt's call: the current one has not reported yet
    result = call_result(status, answered_by)
    step = touch if touch["step_id"] is not None and not touch["test_call"] else None
    retried = set(step["retry_on"].split(",")) if step else set()
    if result == "completed" or (result == "machine" and "machine" not in retried):
        new = "completed"  # a person answered, or a voicemail counts as delivered for this step
    elif result in retried and touch["attempts"] < step["max_attempts"] and _still_wanted(connection, touch):
        due = now + dt.timedelta(minutes=step["retry_minutes"])
        connection.execute(update(Touch).where(Touch.id == touch_id).values(
            status="planned", due_at=due, updated_at=now, call_sid=None,
            last_error=f"{result}; attempt {touch['attempts'] + 1} of {step['max_attempts']} due"))
        return "planned"
    else:
        new = "unreached"
    connection.execute(update(Touch).where(Touch.id == touch_id).values(status=new, updated_at=now))
    if new == "unreached" and step and step["fallback_sms"] and touch["channel"] == "voice":
        _plan_fallback_text(connection, touch, step, now)
    return new


def _still_wanted(connection: Connection, touch) -> bool:
    """Whether the subject still wants the contact: an appointment booked for a reminder, missed
    for a recovery; a prescription still active and due on the same day (not refilled meanwhile)
    for a refill prompt (the job checks the times)."""
    if touch["prescription_id"] is not None:
        return connection.execute(select(Prescription.id).where(
            Prescription.id == touch["prescription_id"], Prescription.active.is_(True),
            Prescription.refill_due_on == touch["refill_due_on"])).first() is not None
    wanted = "no_show" if touch["flow"] == "no_show" else "booked"
    return connection.execute(select(Appointment.status).where(
        Appointment.id == touch["appointment_id"])).scalar_one() == wanted


def _plan_fallback_text(connection: Connection, touch, step, now: dt.datetime) -> None:
    """A text in place of the call that never reached the patient (once per step)."""
    try:
        with connection.begin_nested():
            connection.execute(insert(Touch).values(
                appointment_id=touch["appointment_id"], patient_id=touch["patient_id"],
                prescription_id=touch["prescription_id"], refill_due_on=touch["refill_due_on"],
                step=f"{touch['step']}-text",
                flow=FALLBACK_TEXTS.get(touch["flow"], "text_reminder"),
                channel="sms", campaign_step_id=step["step_id"], due_at=now, status="planned", attempts=0,
                updated_at=now, test_call=False))
    except IntegrityError:
        pass  # planned already


def cancel_pending(connection: Connection, appointment_id: int, why: str, now: dt.datetime) -> int:
    """Skip the appointment's campaign touches still waiting (it was confirmed, cancelled...);
    returns how many."""
    return connection.execute(
        update(Touch).where(Touch.appointment_id == appointment_id, Touch.status == "planned",
                            Touch.campaign_step_id.is_not(None))
        .values(status="skipped", last_error=why[:200], updated_at=now)).rowcount


def end_refill_prompts(connection: Connection, prescription_id: int, why: str, now: dt.datetime) -> int:
    """Skip a prescription's refill prompts still waiting (the refill was asked for, filled or
    stopped: nobody is asked again); returns how many were skipped. Its refill texts' questions
    end too (texts.open_conversations finds them over), without a write here: the text path
    locks conversations before the prescription, and this runs under the prescription's lock."""
    return connection.execute(
        update(Touch).where(Touch.prescription_id == prescription_id, Touch.status == "planned")
        .values(status="skipped", last_error=why[:200], updated_at=now)).rowcount
