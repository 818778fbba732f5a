"""Texts in the database: queueing one to send, who may not be texted, opting numbers out and
in, and the conversations that reminders open. The sending itself is a job (outbound/texts.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import phonenumbers
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import call_flows
import prompts
from call_flows import OpenTask, SetAppointmentStatus, Step
from call_flows.text import xml_safe
from ivr import calls, events, tasks, touches
from ivr.messaging.segments import count, plain
from ivr.models import (Appointment, CallerLanguage, Clinic, Conversation, Escalation, Message, MessageEvent,
                        Patient, PhoneOptOut, Prescription, Task, utcnow)

# A reminder costs at most this many segments; a longer one is sent in its short form.
MAX_REMINDER_SEGMENTS = 2
# Longest body we keep of a text a patient sends (Twilio joins at most 1,600 characters).
MAX_INBOUND = 2000
# Texts that go even to a number that opted out: a carrier allows a final confirmation of an
# opt-out made by a word it does not know, and answers to HELP.
ALWAYS_SENT = frozenset({"opt_out", "help"})


def queue_text(session: Session, *, clinic_id: int | None, to: str, from_: str, body: str, kind: str,
               patient_id: int | None = None, appointment_id: int | None = None, call_id: int | None = None,
               touch_id: int | None = None, conversation_id: int | None = None) -> int:
    """A text to send, as a planned message (its job sends it); returns its id."""
    body = plain(xml_safe(body))
    cost = count(body)
    message = Message(clinic_id=clinic_id, patient_id=patient_id, appointment_id=appointment_id,
                      call_id=call_id, touch_id=touch_id, conversation_id=conversation_id,
                      direction="outbound", kind=kind, from_number=from_, to_number=to, body=body,
                      encoding=cost.encoding, segments=cost.count, status="planned")
    session.add(message)
    session.flush()
    note(session, message.id, "planned", kind=kind, segments=cost.count, encoding=cost.encoding)
    return message.id


def record_inbound(session: Session, *, sid: str, clinic_id: int | None, from_: str, to: str, body: str,
                   patient_id: int | None) -> tuple[int, bool]:
    """A text a patient (or anyone) sent us, kept safely: characters no text can hold are blanked
    and an overlong one is cut. Returns its id, and whether this request recorded it (False for
    a repeated webhook, even one arriving at the same moment as the first)."""
    existing = session.scalar(select(Message.id).where(Message.message_sid == sid))
    if existing is not None:
        return existing, False
    body = xml_safe(body.replace("\x00", ""))[:MAX_INBOUND]
    cost = count(body)
    message = Message(clinic_id=clinic_id, patient_id=patient_id, direction="inbound", kind="received",
                      from_number=from_, to_number=to, body=body, encoding=cost.encoding,
                      segments=cost.count, status="received", message_sid=sid)
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # the same webhook, twice at once: the other copy acts on it
        return session.scalar(select(Message.id).where(Message.message_sid == sid)), False
    return message.id, True


def note(session: Session, message_id: int, event: str, **detail: Any) -> None:
    """Append to a text's audit trail (decisions and statuses; never its words)."""
    session.add(MessageEvent(message_id=message_id, kind=event, detail=detail))


def textable(phone: str | None) -> str | None:
    """Why a number cannot take a text (invalid, a landline...), or None when it can."""
    try:
        parsed = phonenumbers.parse(phone or "", None)
    except phonenumbers.NumberParseException:
        return "not a phone number"
    # The number's type alone says both (UNKNOWN: not valid): is_valid_number would work out the
    # type a second time, and a campaign's planner asks this of every patient it texts.
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return "not a valid phone number"
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "not a mobile number"
    return None


def opted_out(session: Session, clinic_id: int | None, phone: str) -> bool:
    """Whether this number asked this clinic for no more contact (by text, call or carrier)."""
    if session.scalar(select(PhoneOptOut.id).where(PhoneOptOut.clinic_id == clinic_id, PhoneOptOut.phone == phone)):
        return True
    return session.scalar(select(Patient.id).where(Patient.clinic_id == clinic_id, Patient.phone == phone,
                                                   Patient.opted_out_at.is_not(None))) is not None


def record_opt_out(session: Session, clinic_id: int, phone: str, source: str, message_id: int | None) -> None:
    """Honour an opt-out everywhere at once: the number, every patient of the clinic at that
    number, and any question we were waiting on them to answer."""
    now = utcnow()
    if session.scalar(select(PhoneOptOut.id).where(PhoneOptOut.clinic_id == clinic_id,
                                                   PhoneOptOut.phone == phone)) is None:
        try:
            with session.begin_nested():
                session.add(PhoneOptOut(clinic_id=clinic_id, phone=phone, source=source, message_id=message_id))
        except IntegrityError:
            pass  # recorded by a concurrent request
    # RETURNING: the patients this update opted out, not those a concurrent STOP got to first.
    opted_out = session.scalars(update(Patient).where(Patient.clinic_id == clinic_id, Patient.phone == phone,
                                                      Patient.opted_out_at.is_(None))
                                .values(opted_out_at=now, opted_out_source=source[:40])
                                .returning(Patient.id)).all()
    for patient_id in opted_out:
        events.emit(session, clinic_id, "patient.opted_out",
                    lambda patient_id=patient_id: events.patient_data(session, clinic_id, patient_id, channel="sms"))
    session.execute(update(Conversation).where(Conversation.clinic_id == clinic_id, Conversation.phone == phone,
                                               Conversation.closed_at.is_(None)).values(closed_at=now))


# Opt-outs that an opt-in by text undoes: those made by text, or by the carrier (which START
# lifts at the carrier too). One made on a call or by staff stays until changed there.
TEXT_OPT_OUTS = ("sms keyword", "carrier 21610")


def record_opt_in(session: Session, clinic_id: int, phone: str, message_id: int) -> None:
    """A number that texted START (or UNSTOP, YES) may get texts again. The opt-in is recorded
    as the patients' consent (source and time; the message is its evidence, and the opt-out it
    lifts stays in the message's audit trail)."""
    lifted = session.scalars(select(PhoneOptOut).where(PhoneOptOut.clinic_id == clinic_id,
                                                       PhoneOptOut.phone == phone)).all()
    note(session, message_id, "opted_in", lifted=[{"source": o.source, "at": o.at.isoformat()} for o in lifted])
    session.execute(delete(PhoneOptOut).where(PhoneOptOut.clinic_id == clinic_id, PhoneOptOut.phone == phone))
    session.execute(update(Patient).where(Patient.clinic_id == clinic_id, Patient.phone == phone)
                    .values(consent_at=utcnow(), consent_source="sms opt-in"))
    session.execute(update(Patient).where(Patient.clinic_id == clinic_id, Patient.phone == phone,
                                          Patient.opted_out_source.in_(TEXT_OPT_OUTS))
                    .values(opted_out_at=None, opted_out_source=None))


def clinic_for_number(session: Session, number: str) -> Clinic | None:
    """The clinic whose public number this is."""
    return session.scalars(select(Clinic).where(Clinic.phone == number)).first()


def patient_for_number(session: Session, clinic_id: int, number: str) -> Patient | None:
    """The clinic's patient at this number; None when there is none, or several (a household
    sharing a phone: a text from it cannot say who wrote it)."""
    found = session.scalars(select(Patient).where(Patient.clinic_id == clinic_id, Patient.phone == number)
                            .limit(2)).all()
    return found[0] if len(found) == 1 else None


def text_for(catalogue: prompts.Catalogue, key: str, values: Mapping[str, str]) -> str:
    """A text's words from the catalogue."""
    return catalogue.text(key, values)


# The kind of the first text of each conversation flow (the send job's checks go by it).
FIRST_TEXT_KIND = {"text_reminder": "reminder", "text_no_show": "no_show", "text_refill": "refill"}
RECOVERY_TEXT_FLOWS = ("text_no_show",)
# How long after a missed visit its recovery text (or after a refill prompt, its offer) still
# takes an answer.
RECOVERY_DAYS = dt.timedelta(days=7)


def start_reminder(session: Session, touch_id: int, from_: str) -> list[int]:
    """Open the reminder conversation of an SMS touch and queue its first text; the ids of the
    texts to send."""
    row = calls.touch_row(session, touch_id)
    context = calls.text_context(row)
    clinic = session.get(Clinic, session.get(Patient, row["patient_id"]).clinic_id)
    facts = {"appointment": calls.appointment_fingerprint(row), "prescription": calls.prescription_fingerprint(row),
             "private": clinic.sms_private}
    flow = row["flow"] if row["flow"] in call_flows.TEXT_FLOWS else "text_reminder"
    step = call_flows.start_text(flow, facts)
    if flow == "text_reminder" and not clinic.sms_private and count(plain(text_for(
            context.catalogue, "sms.reminder", context.values))).count > MAX_REMINDER_SEGMENTS:
        # A name or a date that takes the text past two segments (one letter outside GSM-7 makes
        # the whole text UCS-2): the short form goes instead, and the details on the reply "1".
        step = call_flows.start_text("text_reminder", {**facts, "private": True})
    phone = session.get(Patient, row["patient_id"]).phone
    conversation = Conversation(clinic_id=clinic.id, patient_id=row["patient_id"], appointment_id=row["appointment_id"],
                                prescription_id=row["prescription_id"], phone=phone, flow=flow, state=dict(step.state))
    session.add(conversation)
    session.flush()
    return _texts_of(session, step, context, conversation, from_, kind=FIRST_TEXT_KIND.get(flow, "reminder"),
                     touch_id=touch_id)


def open_conversations(session: Session, clinic_id: int, phone: str) -> list[Conversation]:
    """The questions we asked this number that are still waiting for an answer, locked. A
    conversation whose appointment has started is over: it is closed here and not returned."""
    found = session.scalars(select(Conversation).where(Conversation.clinic_id == clinic_id,
                                                       Conversation.phone == phone, Conversation.closed_at.is_(None))
                            .order_by(Conversation.id).with_for_update()).all()
    now, waiting = utcnow(), []
    for conversation in found:
        appointment = session.get(Appointment, conversation.appointment_id) if conversation.appointment_id else None
        # A reminder's question ends when the visit begins; a missed visit's offer a week after
        # it was made, or as soon as the visit is no longer a missed one (booked again, say); a
        # refill's offer a week after it was made, or when the prescription is stopped.
        if conversation.prescription_id is not None:
            over = _refill_question_over(session, conversation, now)
        elif appointment is None:
            over = False
        elif conversation.flow in RECOVERY_TEXT_FLOWS:
            over = appointment.status != "no_show" or conversation.opened_at + RECOVERY_DAYS <= now
        else:
            over = appointment.starts_at <= now
        if over:
            conversation.closed_at = now
        else:
            waiting.append(conversation)
    return waiting


def _refill_question_over(session: Session, conversation: Conversation, now: dt.datetime) -> bool:
    """A refill text's question ends a week after it was asked, when the prescription is stopped,
    or once a refill was asked for since (by call or on the line). (Filled meanwhile, the flow
    answers that it changed.)"""
    prescription = session.get(Prescription, conversation.prescription_id)
    if not prescription.active or conversation.opened_at + RECOVERY_DAYS <= now:
        return True
    return session.scalar(select(Task.id).where(Task.prescription_id == prescription.id, Task.kind == "refill_request",
                                                Task.created_at >= conversation.opened_at).limit(1)) is not None


def answer(session: Session, conversation: Conversation, intent: str | None, message_id: int,
           from_: str) -> tuple[Step, list[int]]:
    """Feed a reply to its conversation's flow, apply what it decided (the appointment is locked
    while it is read and changed), and queue the flow's texts; returns the step and their ids."""
    appointment = (session.get(Appointment, conversation.appointment_id, with_for_update=True)
                   if conversation.appointment_id else None)
    if conversation.prescription_id is not None:  # read and acted on under lock, as the appointment
        session.get(Prescription, conversation.prescription_id, with_for_update={"key_share": True},
                    populate_existing=True)
    row = _subject_row(session, conversation)
    facts = {"appointment": calls.appointment_fingerprint(row) if row else None,
             "prescription": calls.prescription_fingerprint(row) if row else None}
    step = call_flows.reply(conversation.flow, conversation.state, call_flows.Replied(intent), facts)
    changes: list[dict] = []
    for effect in step.effects:
        if isinstance(effect, SetAppointmentStatus) and appointment is not None:
            changes.append({"appointment_id": appointment.id, "status_from": appointment.status,
                            "status_to": effect.status})
            changed = appointment.status != effect.status
            appointment.status, appointment.status_changed_at = effect.status, utcnow()
            touches.cancel_pending(session.connection(), appointment.id, f"appointment {effect.status}", utcnow())
            if changed:
                events.appointment_changed(session, conversation.clinic_id, appointment.id, effect.status, "sms")
        elif isinstance(effect, OpenTask):
            clinic = session.get(Clinic, conversation.clinic_id)
            if effect.kind == "unmatched_text":  # one open task per number, however often they write
                patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
                task_id = pass_to_staff(session, clinic, conversation.phone, patient, message_id,
                                        "a reply that matched no answer")
            else:
                task_id = tasks.open_task(session.connection(), kind=effect.kind, clinic_id=clinic.id,
                                          patient_id=conversation.patient_id,
                                          appointment_id=conversation.appointment_id, message_id=message_id,
                                          prescription_id=effect.prescription_id or conversation.prescription_id,
                                          due=tasks.due_at(utcnow(), clinic.timezone, clinic.phone,
                                                           effect.within_business_days, clinic.holiday_country,
                                                           clinic.holiday_subdivision))
                events.task_opened(session, clinic.id, effect.kind, task_id, appointment_id=conversation.appointment_id,
                                   prescription_id=effect.prescription_id or conversation.prescription_id,
                                   channel="sms")
            changes.append({"task_id": task_id, "task": effect.kind})
    conversation.state = dict(step.state)
    if step.done:
        conversation.closed_at = utcnow()
    note(session, message_id, "answered", conversation_id=conversation.id, intent=intent,
         decision=step.decision, outcome=step.outcome, changes=changes)
    context = calls.text_context(row) if row else None
    return step, _texts_of(session, step, context, conversation, from_, kind="reply")


def _subject_row(session: Session, conversation: Conversation):
    """What texts about the conversation's appointment or prescription need (as a touch's row,
    from its latest touch; None when it has none)."""
    from ivr.models import Touch

    subject = (Touch.prescription_id == conversation.prescription_id if conversation.prescription_id is not None
               else Touch.appointment_id == conversation.appointment_id)
    touch_id = session.scalar(select(Touch.id).where(subject).order_by(Touch.id.desc()).limit(1))
    return calls.touch_row(session, touch_id) if touch_id is not None else None


def _texts_of(session: Session, step: Step, context, conversation: Conversation, from_: str, *,
              kind: str, touch_id: int | None = None) -> list[int]:
    """Queue the texts a conversation's step sends ("passed to staff" at most once a day)."""
    queued = []
    for action in (a for a in step.actions if isinstance(a, call_flows.Text)):
        this_kind = "passed_to_staff" if action.prompt == "sms.passed_to_staff" else kind
        if this_kind == "passed_to_staff" and answered_today(session, session.get(Clinic, conversation.clinic_id),
                                                             conversation.phone, this_kind):
            continue
        queued.append(queue_text(session, clinic_id=conversation.clinic_id, to=conversation.phone, from_=from_,
                                 body=text_for(context.catalogue, action.prompt, context.values), kind=this_kind,
                                 patient_id=conversation.patient_id, appointment_id=conversation.appointment_id,
                                 touch_id=touch_id, conversation_id=conversation.id))
    return queued


def missed_call_text(session: Session, call_id: int) -> dict[str, Any]:
    """Decide (once) whether an inbound call that ended gets a missed-call text, queue it with its
    call-back task when it does, and record the decision on the call. Returns the decision."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.models import Call, CallEvent

    call = session.get(Call, call_id, with_for_update=True)
    if call.clinic_id is not None:  # decisions for one clinic one at a time: "once a day" holds
        session.get(Clinic, call.clinic_id, with_for_update=True)
    done = session.scalar(select(CallEvent.detail).where(CallEvent.call_id == call_id, CallEvent.kind == "text_back"))
    if done is not None:
        return done
    clinic = session.get(Clinic, call.clinic_id) if call.clinic_id else None
    phone = call.from_number
    reason = None
    if call.direction != "inbound" or clinic is None:
        reason = "not a call to a clinic"
    elif call.outcome == "transferred":
        reason = "a person took the call"
    elif (call.state or {}).get("served"):
        reason = "the menu served the caller"
    elif session.scalar(select(Escalation.id).where(Escalation.call_id == call_id,
                                                    Escalation.callback_status.in_(("planned", "dialing", "connecting", "done")))):
        reason = "a call back is planned"
    elif not phone:
        reason = "no caller number"
    else:
        reason = textable(phone) or ("the number opted out" if opted_out(session, clinic.id, phone) else None)
    if reason is None:
        midnight = dt.datetime.combine(utcnow().astimezone(ZoneInfo(clinic.timezone)).date(), dt.time(),
                                       ZoneInfo(clinic.timezone))
        if session.scalar(select(Message.id).where(Message.clinic_id == clinic.id, Message.to_number == phone,
                                                   Message.kind == "text_back", Message.created_at >= midnight)):
            reason = "already texted today"
    detail: dict[str, Any] = {"decision": "suppressed", "reason": reason}
    if reason is None:
        # The caller the line identified, else the number's patient (one, or none if shared);
        # the language they chose on the line, else the patient's.
        patient = (session.get(Patient, call.patient_id) if call.patient_id
                   else patient_for_number(session, clinic.id, phone))
        chosen = (call.state or {}).get("language") or session.scalar(select(CallerLanguage.language).where(
            CallerLanguage.clinic_id == clinic.id, CallerLanguage.phone == phone))
        catalogue = prompts.first_available(chosen, patient.language if patient else None, clinic.language)
        values = {name: make() for name, make in calls.clinic_values(clinic.name, clinic.phone, for_texts=True).items()}
        message_id = queue_text(session, clinic_id=clinic.id, to=phone, from_=clinic.phone, kind="text_back",
                                body=text_for(catalogue, "sms.text_back", values), call_id=call_id,
                                patient_id=patient.id if patient else None)
        # The text promises a call back within a business day: this task is that promise (the
        # one the call itself opened, when it already promised a call back).
        task_id = session.scalar(select(Task.id).where(Task.call_id == call_id, Task.status == "open",
                                                       Task.kind.in_(("call_back", "voicemail_review"))))
        if task_id is not None:
            session.execute(update(Task).where(Task.id == task_id).values(message_id=message_id))
        else:
            task_id = tasks.open_task(session.connection(), kind="call_back", clinic_id=clinic.id,
                                      call_id=call_id, patient_id=patient.id if patient else None,
                                      message_id=message_id, phone=None if patient else phone,
                                      due=tasks.due_at(utcnow(), clinic.timezone, clinic.phone, 1,
                                                       clinic.holiday_country, clinic.holiday_subdivision))
        detail = {"decision": "sent", "message_id": message_id, "task_id": task_id}
    session.add(CallEvent(call_id=call_id, kind="text_back", detail=detail))
    return detail


def answered_today(session: Session, clinic: Clinic, phone: str, kind: str) -> bool:
    """Whether the clinic already sent this number an automatic text of this kind today (its
    own local day)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(clinic.timezone)
    midnight = dt.datetime.combine(utcnow().astimezone(zone).date(), dt.time(), zone)
    return session.scalar(select(Message.id).where(Message.clinic_id == clinic.id, Message.to_number == phone,
                                                   Message.kind == kind, Message.created_at >= midnight)) is not None


def pass_to_staff(session: Session, clinic: Clinic, phone: str, patient: Patient | None, message_id: int,
                  reason: str) -> int:
    """Put a text in front of a person: a new unmatched_text task, or the one already open for
    this number (a patient who writes three times gets one task, with all three texts)."""
    from ivr.models import Task

    who = Task.patient_id == patient.id if patient else Task.phone == phone
    task_id = session.scalar(select(Task.id).where(Task.clinic_id == clinic.id, Task.kind == "unmatched_text",
                                                   Task.status == "open", who).order_by(Task.id))
    if task_id is None:
        task_id = tasks.open_task(session.connection(), kind="unmatched_text", clinic_id=clinic.id,
                                  patient_id=patient.id if patient else None, message_id=message_id,
                                  phone=None if patient else phone, due=utcnow())
    note(session, message_id, "passed_to_staff", task_id=task_id, reason=reason)
    return task_id
