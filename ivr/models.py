"""The record: clinics, patients, appointments, outreach touches, calls and their audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator,
                        UniqueConstraint, event, false, select, true)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from call_flows.text import clean_name
from prompts.spoken import PROVIDER_TITLES
from ivr.errors import IvrError


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no offset)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class Clinic(Base):
    __tablename__ = "clinic"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    phone: Mapped[str] = mapped_column(String(20), unique=True,
                                       comment="public number patients call back, E.164")
    staff_phone: Mapped[str | None] = mapped_column(String(20), comment="where live transfers go, E.164")
    language: Mapped[str] = mapped_column(String(8), default="en")
    voice_answers: Mapped[bool] = mapped_column(default=False, server_default=false(),
                                                comment="questions also listen for spoken answers")
    calls_from: Mapped[dt.time] = mapped_column(default=dt.time(9), server_default="09:00:00",
                                                comment="earliest local time a patient is rung")
    calls_until: Mapped[dt.time] = mapped_column(default=dt.time(20), server_default="20:00:00",
                                                 comment="no call starts at or after this local time")
    sms_private: Mapped[bool] = mapped_column(
        default=False, server_default=false(),
        comment="reminder texts name only the clinic; details are sent when the patient replies 1")
    retry_wrong_person: Mapped[bool] = mapped_column(
        default=False, server_default=false(),
        comment="when someone else answers a reminder, ring once more the next day instead of a task")
    senior_mode: Mapped[bool] = mapped_column(
        default=False, server_default=false(),
        comment="the default for patients without their own: slower speech, longer waits, a question "
                "repeated once before it counts as missed")
    holiday_country: Mapped[str | None] = mapped_column(
        String(2), comment="ISO country whose public holidays close the clinic; None: its number's")
    holiday_subdivision: Mapped[str | None] = mapped_column(String(10), comment="a state or province: NY, QC")
    queue_callers: Mapped[bool] = mapped_column(
        default=True, server_default=true(),
        comment="a caller asking for a person waits in a queue, hearing their place, while staff lines are "
                "rung in turn; off: the caller's call rings the staff lines itself")
    ring_together: Mapped[bool] = mapped_column(
        default=False, server_default=false(),
        comment="for a queued caller, ring every staff line at once (the first to press 1 takes them) "
                "instead of one after another")
    queue_max_wait: Mapped[int] = mapped_column(
        default=300, server_default="300", comment="seconds a caller waits in the queue before being offered "
                                                   "a call back or a message")
    max_calls_in_progress: Mapped[int] = mapped_column(
        default=10, server_default="10", comment="outbound calls of the clinic ringing or talking at once, at most "
                                                 "(more wait their turn)")
    daily_contact_cap: Mapped[int] = mapped_column(
        default=4, server_default="4", comment="most calls (each attempt) and texts the clinic starts to one "
                                               "patient in a day (the patient's own day), across campaigns and channels")

    locations: Mapped[list[Location]] = relationship(back_populates="clinic")
    patients: Mapped[list[Patient]] = relationship(back_populates="clinic")

    @validates("name")
    def _clean(self, _key: str, value: str) -> str:
        return clean_name(value)


class Location(Base):
    __tablename__ = "location"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), comment="the place's proper name ('Main Street'); each "
                                      "language builds the phrase around it; said only after identity check")
    timezone: Mapped[str | None] = mapped_column(String(64), comment="where visits happen; None: the clinic's")

    clinic: Mapped[Clinic] = relationship(back_populates="locations")

    @validates("name")
    def _clean(self, _key: str, value: str) -> str:
        return clean_name(value)


class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20), index=True, comment="E.164")
    date_of_birth: Mapped[dt.date | None]
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64), comment="None: the clinic's")
    preferred_channel: Mapped[str] = mapped_column(String(10), default="voice")
    speech_rate: Mapped[int | None] = mapped_column(comment="words per minute; None: default")
    senior_mode: Mapped[bool | None] = mapped_column(comment="None: the clinic's default")
    consent_at: Mapped[dt.datetime | None]
    consent_source: Mapped[str | None] = mapped_column(String(40))
    opted_out_at: Mapped[dt.datetime | None]
    opted_out_source: Mapped[str | None] = mapped_column(String(40), comment="voice, keypad, sms, staff")
    high_priority: Mapped[bool] = mapped_column(
        default=False, server_default=false(), comment="a missed visit also opens a task for staff at once")
    no_contact_days: Mapped[str | None] = mapped_column(
        String(40), comment="weekdays the patient asked not to be contacted on, comma-separated: sat,sun")
    contact_not_before: Mapped[dt.date | None] = mapped_column(comment="no outreach before this day")

    clinic: Mapped[Clinic] = relationship(back_populates="patients")
    appointments: Mapped[list[Appointment]] = relationship(back_populates="patient")

    @validates("first_name", "last_name")
    def _clean(self, _key: str, value: str) -> str:
        return clean_name(value)


APPOINTMENT_STATUSES = ("booked", "confirmed", "cancelled", "reschedule_requested", "no_show")


class Appointment(Base):
    __tablename__ = "appointment"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"))
    provider_name: Mapped[str] = mapped_column(String(200), comment="the provider's name, no title ('Amara Patel')")
    provider_title: Mapped[str | None] = mapped_column(String(20), comment="doctor; None: the name alone")
    starts_at: Mapped[dt.datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(24), default="booked")
    status_changed_at: Mapped[dt.datetime | None]
    appointment_type: Mapped[str | None] = mapped_column(
        String(40), comment="the clinic's own kind of visit ('new patient'); picks its campaign")

    patient: Mapped[Patient] = relationship(back_populates="appointments")
    location: Mapped[Location] = relationship()
    touches: Mapped[list[Touch]] = relationship(back_populates="appointment")

    @validates("provider_name")
    def _clean(self, _key: str, value: str) -> str:
        return clean_name(value)

    @validates("provider_title")
    def _known_title(self, _key: str, value: str | None) -> str | None:
        if value is not None and value not in PROVIDER_TITLES:
            raise ValueError(f"unknown provider title {value!r}: use one of {', '.join(PROVIDER_TITLES)}, or none")
        return value


TOUCH_STATUSES = ("planned", "dialing", "placed", "completed", "unreached", "failed", "skipped",
                  "uncertain")  # uncertain: the carrier may have placed the call; never retried


class Touch(Base):
    """One planned contact about one subject (an appointment, or a prescription's refill due on a
    date); unique per subject and step so nothing is ever placed twice."""

    __tablename__ = "touch"
    __table_args__ = (
        UniqueConstraint("appointment_id", "step", name="uq_touch_appointment_step"),
        UniqueConstraint("prescription_id", "refill_due_on", "step", name="uq_touch_prescription_step"),
        CheckConstraint("(appointment_id IS NULL) <> (prescription_id IS NULL) "
                        "AND (prescription_id IS NULL) = (refill_due_on IS NULL)", name="ck_touch_one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True,
                                            comment="whom it contacts (its subject's patient)")
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"),
                                                       comment="the visit it is about, or None: a prescription")
    prescription_id: Mapped[int | None] = mapped_column(ForeignKey("prescription.id"),
                                                        comment="the prescription whose refill it prompts")
    refill_due_on: Mapped[dt.date | None] = mapped_column(
        comment="the refill due date it prompts for (the next fill is a new subject)")
    step: Mapped[str] = mapped_column(String(40), comment="which planned contact: reminder, test-call-...")
    flow: Mapped[str] = mapped_column(String(40), default="reminder", server_default="reminder",
                                      comment="the call flow this contact runs")
    channel: Mapped[str] = mapped_column(String(10), default="voice")
    test_call: Mapped[bool] = mapped_column(default=False, server_default=false(),
                                            comment="a sandbox test call: rings at any hour, whatever "
                                                    "the appointment's status")
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="planned", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    call_sid: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    campaign_step_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_step.id"), comment="the campaign step it carries out; None: a lone reminder")
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when it last rang or texted the patient (the daily contact cap counts these)")

    patient: Mapped[Patient] = relationship()
    appointment: Mapped[Appointment | None] = relationship(back_populates="touches")
    prescription: Mapped[Prescription | None] = relationship()
    campaign_step: Mapped[CampaignStep | None] = relationship()

    @property
    def contact(self) -> Patient:
        """Whom the touch reaches: its appointment's patient now (an appointment handed to another
        patient takes its touches along), else the patient it was planned for."""
        return self.appointment.patient if self.appointment is not None else self.patient


def touch_contact_id():
    """Whom a touch reaches, in SQL (Touch.contact): its appointment's patient, else its own;
    the query must outer-join Touch.appointment."""
    from sqlalchemy import func

    return func.coalesce(Appointment.patient_id, Touch.patient_id)


@event.listens_for(Touch, "before_insert")
def _patient_of_subject(_mapper, _connection, touch: Touch) -> None:
    """A touch made without its patient contacts its subject's patient."""
    if touch.patient_id is None and touch.patient is None:
        subject = (select(Appointment.patient_id).where(Appointment.id == touch.appointment_id)
                   if touch.appointment_id is not None
                   else select(Prescription.patient_id).where(Prescription.id == touch.prescription_id))
        touch.patient_id = subject.scalar_subquery()


CHANNEL_RULES = ("voice", "sms", "preferred")   # preferred: the patient's own channel
AUDIENCES = ("all", "voice", "sms")             # whose preferred channel a step is for
RETRY_OUTCOMES = ("busy", "no-answer", "failed", "machine")


class Campaign(Base):
    """A clinic's rules for reminding one kind of appointment (every kind when appointment_type
    is None): a cadence of steps. An appointment follows its type's active campaign, else the
    clinic's active campaign for every type; one active campaign per clinic and type."""

    __tablename__ = "campaign"
    __table_args__ = (UniqueConstraint("clinic_id", "name", name="uq_campaign_clinic_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    appointment_type: Mapped[str | None] = mapped_column(String(40), comment="None: every type")
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    require_consent: Mapped[bool] = mapped_column(
        default=False, server_default=false(), comment="contact only patients with a recorded consent")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    clinic: Mapped[Clinic] = relationship()
    steps: Mapped[list[CampaignStep]] = relationship(back_populates="campaign",
                                                     order_by="CampaignStep.offset_minutes")

    @validates("name")
    def _clean(self, _key: str, value: str) -> str:
        return clean_name(value)


class CampaignStep(Base):
    """One contact of a campaign, at a time relative to the appointment's start."""

    __tablename__ = "campaign_step"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="uq_campaign_step_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    name: Mapped[str] = mapped_column(String(40), comment="names the touch's step: 72h-call")
    purpose: Mapped[str] = mapped_column(String(12), default="reminder", server_default="reminder",
                                         comment="reminder (before the visit), no_show (after a missed one) or "
                                                 "refill (around a prescription's refill due date)")
    offset_minutes: Mapped[int] = mapped_column(comment="from the appointment's start (-4320 is 72 h before), or "
                                                        "from the start of a refill's due day")
    channel: Mapped[str] = mapped_column(String(10), default="preferred", comment="voice, sms or preferred")
    audience: Mapped[str] = mapped_column(String(10), default="all",
                                          comment="all, or only patients who prefer voice / sms")
    fallback_sms: Mapped[bool] = mapped_column(default=False, server_default=false(),
                                               comment="a call that never reaches the patient is followed by a text")
    retry_on: Mapped[str] = mapped_column(String(60), default="busy,no-answer", server_default="busy,no-answer",
                                          comment="call results tried again: busy, no-answer, failed, machine")
    max_attempts: Mapped[int] = mapped_column(default=3, server_default="3", comment="calls at most, retries included")
    retry_minutes: Mapped[int] = mapped_column(default=60, server_default="60", comment="wait before a retry")

    campaign: Mapped[Campaign] = relationship(back_populates="steps")

    @property
    def retried(self) -> frozenset[str]:
        """The call results this step tries again."""
        return frozenset(filter(None, self.retry_on.split(",")))


class Call(Base):
    __tablename__ = "call"
    # An inbound caller's number is looked up on every turn before they are identified (their
    # wrong dates of birth today): by clinic and number, not by scanning the clinic's calls.
    __table_args__ = (Index("ix_call_clinic_id_from_number", "clinic_id", "from_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16), comment="inbound or outbound-api")
    flow: Mapped[str] = mapped_column(String(40))
    touch_id: Mapped[int | None] = mapped_column(ForeignKey("touch.id"), index=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True,
                                                   comment="an inbound caller, once their identity was checked")
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"), index=True,
                                                       comment="that caller's next appointment, when identified")
    from_number: Mapped[str | None] = mapped_column(String(20))
    to_number: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    answered_by: Mapped[str | None] = mapped_column(String(24))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    turn: Mapped[int] = mapped_column(default=0, server_default="0",
                                      comment="answers carry this number in their URL; older ones are stale")
    last_twiml: Mapped[str | None] = mapped_column(Text, comment="the caller's current question, said "
                                                   "again to a stale or repeated request")
    outcome: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    recordings_checked_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when the carrier was last asked, after the call ended, for recordings left of it")

    touch: Mapped[Touch | None] = relationship()
    events: Mapped[list[CallEvent]] = relationship(back_populates="call", order_by="CallEvent.id")


class CallEvent(Base):
    """Append-only audit of every prompt, input, decision and status change of a call."""

    __tablename__ = "call_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    call: Mapped[Call] = relationship(back_populates="events")


# A text's life: ours until the carrier has it (planned, submitting), then the carrier's; refused:
# we did not send it (opted out, not a mobile, ...), and `reason` says why.
MESSAGE_STATUSES = ("planned", "submitting", "accepted", "queued", "sending", "sent", "delivered",
                    "undelivered", "failed", "refused", "uncertain", "received")


class Message(Base):
    """One text message, to or from a patient (or a number we do not know)."""

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id"))
    touch_id: Mapped[int | None] = mapped_column(ForeignKey("touch.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    direction: Mapped[str] = mapped_column(String(10), comment="inbound or outbound")
    kind: Mapped[str] = mapped_column(String(24), comment="reminder, reply, help, opt_out, text_back, ...")
    from_number: Mapped[str | None] = mapped_column(String(20))
    to_number: Mapped[str | None] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8), comment="gsm7 or ucs2")
    segments: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), index=True)
    error_code: Mapped[int | None] = mapped_column(comment="the carrier's error code, when it gave one")
    reason: Mapped[str | None] = mapped_column(String(200), comment="why we refused to send it")
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageEvent(Base):
    """Append-only audit of a text: every status, decision and refusal."""

    __tablename__ = "message_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Conversation(Base):
    """A question we asked a patient by text and the state of their answer (a pure text flow's
    state, as a call keeps its flow's)."""

    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    prescription_id: Mapped[int | None] = mapped_column(ForeignKey("prescription.id"),
                                                        comment="the prescription a refill prompt is about")
    phone: Mapped[str] = mapped_column(String(20), index=True, comment="the patient's number, E.164")
    flow: Mapped[str] = mapped_column(String(40))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]


class PhoneOptOut(Base):
    """A number that asked a clinic for no more texts or calls (by a carrier's keyword or ours),
    whether or not it belongs to a patient; removed when it opts in again."""

    __tablename__ = "phone_opt_out"
    __table_args__ = (UniqueConstraint("clinic_id", "phone", name="uq_phone_opt_out"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    phone: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(40), comment="sms keyword, carrier error 21610, voice, staff")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))


class OpeningHours(Base):
    """When a clinic's line is staffed, per weekday, on the clock of the clinic's time zone. A
    clinic with none is always open; a day may have more than one span (a lunch break)."""

    __tablename__ = "opening_hours"
    __table_args__ = (UniqueConstraint("clinic_id", "weekday", "opens", name="uq_opening_hours"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    weekday: Mapped[int] = mapped_column(comment="0 Monday ... 6 Sunday")
    opens: Mapped[dt.time]
    closes: Mapped[dt.time]


ESCALATION_OUTCOMES = ("answered", "call_back", "voicemail", "abandoned", "unanswered")


class Escalation(Base):
    """A caller on the inbound line handed to a person: why, when, how long until someone took
    the call, and how it ended."""

    __tablename__ = "escalation"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id"), unique=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"), index=True)
    reason: Mapped[str] = mapped_column(String(24), comment="asked, stuck, not_verified, refill, emergency, unknown")
    verified: Mapped[bool] = mapped_column(comment="the caller's date of birth had matched")
    started_at: Mapped[dt.datetime] = mapped_column(comment="when the caller was first put through or promised")
    answered_at: Mapped[dt.datetime | None] = mapped_column(comment="when a person took the call")
    staff_phone: Mapped[str | None] = mapped_column(String(20), comment="the line that took it")
    outcome: Mapped[str | None] = mapped_column(String(16), comment="answered, call_back, voicemail, abandoned, "
                                                                    "unanswered; None while it lasts")
    ended_at: Mapped[dt.datetime | None]
    callback_status: Mapped[str | None] = mapped_column(
        String(12), comment="virtual hold: planned, dialing, connecting, done, failed; None: not asked for")
    callback_call_sid: Mapped[str | None] = mapped_column(String(64), comment="the call to staff that calls back")
    queue_status: Mapped[str | None] = mapped_column(
        String(12), comment="waiting, taken, call_back, unanswered, gone; None: the caller was not queued")
    ring_line: Mapped[int] = mapped_column(default=0, server_default="0",
                                           comment="the staff line being rung for a queued caller, in order")
    ring_call_sid: Mapped[str | None] = mapped_column(
        String(64), comment="the call ringing that staff line ('dialing' while it is placed)")
    ring_at: Mapped[dt.datetime | None] = mapped_column(comment="when that line was claimed for ringing")


CALLBACK_STATUSES = ("planned", "dialing", "connecting", "done", "failed")


class StaffLine(Base):
    """Another number the inbound line tries, in order, when the clinic's staff phone does not
    take a call (clinic.staff_phone is always tried first)."""

    __tablename__ = "staff_line"
    __table_args__ = (UniqueConstraint("clinic_id", "position", name="uq_staff_line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    position: Mapped[int] = mapped_column(comment="1 is tried right after clinic.staff_phone")
    phone: Mapped[str] = mapped_column(String(20), comment="E.164")


class ClinicClosure(Base):
    """A day the clinic is closed besides its country's public holidays."""

    __tablename__ = "clinic_closure"
    __table_args__ = (UniqueConstraint("clinic_id", "day", name="uq_clinic_closure"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    day: Mapped[dt.date]


class CallerLanguage(Base):
    """The language a number chose on a clinic's inbound line, used for its next calls."""

    __tablename__ = "caller_language"
    __table_args__ = (UniqueConstraint("clinic_id", "phone", name="uq_caller_language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    phone: Mapped[str] = mapped_column(String(20), comment="E.164")
    language: Mapped[str] = mapped_column(String(8))
    chosen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Prescription(Base):
    """A patient's prescription that the clinic can refill; said by its name after identity check."""

    __tablename__ = "prescription"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    medication: Mapped[str] = mapped_column(String(200), comment="as the patient knows it ('metformin')")
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    refill_due_on: Mapped[dt.date | None] = mapped_column(comment="when the patient runs out (refill prompts "
                                                                  "are planned around it); None: not prompted")
    refills_left: Mapped[int | None] = mapped_column(comment="fills the prescription still allows; None: unknown")
    filled_at: Mapped[dt.datetime | None] = mapped_column(
        comment="when its last fill was recorded (refill requests before it were for an earlier fill)")
    pharmacy_name: Mapped[str | None] = mapped_column(String(200), comment="where it is filled")
    pharmacy_phone: Mapped[str | None] = mapped_column(String(20), comment="the pharmacy's line, E.164; None: "
                                                                           "the clinic's staff phone")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship()

    @validates("medication", "pharmacy_name")
    def _clean(self, _key: str, value: str | None) -> str | None:
        return None if value is None else clean_name(value)

    @validates("pharmacy_phone")
    def _e164(self, _key: str, value: str | None) -> str | None:
        from ivr.config import is_e164

        if value is not None and not is_e164(value):
            raise ValueError(f"{value!r} is not a phone number in E.164 form (+12125550198)")
        return value


TASK_STATUSES = ("open", "done", "cancelled")


class Task(Base):
    """Work a person owes a patient: what a prompt or a text promised (call back, a new time), or
    what the system could not handle itself (a text nobody's question matches)."""

    __tablename__ = "task"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), comment="call_back, reschedule_request, wrong_person, ...")
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id"))
    phone: Mapped[str | None] = mapped_column(String(20), comment="who to reach, E.164, when no patient is known")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), comment="the text it is about")
    prescription_id: Mapped[int | None] = mapped_column(ForeignKey("prescription.id"),
                                                        comment="the prescription to refill")
    voicemail: Mapped[str | None] = mapped_column(String(64), comment="the message a caller left (its file id)")
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open", index=True)
    due_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(120), comment="who closed it (a person, or the system)")


class CarrierRecording(Base):
    """A recording of a caller's answer held by the carrier: fetched once, then deleted there, and
    tried again until it is gone (patients' voices must not stay outside the clinic)."""

    __tablename__ = "carrier_recording"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True, comment="the carrier's RecordingSid")
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(index=True,
                                                           comment="when the carrier confirmed it gone")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(200))


API_SCOPES = ("records:write", "records:read", "outcomes:read")


class ApiToken(Base):
    """A clinic's key to the API, with what it may do; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id", name="fk_api_token_clinic_id"), index=True)
    name: Mapped[str] = mapped_column(String(100), comment='what uses it ("scheduling system")')
    scopes: Mapped[str] = mapped_column(String(200), comment="space-separated: records:write ...")
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True, comment="SHA-256 of the token, hex; the token itself is shown once and never stored")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


EXTERNAL_KINDS = ("patient", "appointment", "prescription")


class ExternalRef(Base):
    """The clinic's own id for one of our patients, appointments or prescriptions: what its
    scheduling system (system '') or its FHIR server (an identifier system) calls it."""

    __tablename__ = "external_ref"
    __table_args__ = (UniqueConstraint("clinic_id", "kind", "system", "value", name="uq_external_ref_id"),
                      Index("ix_external_ref_row", "kind", "row_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id", name="fk_external_ref_clinic_id"))
    kind: Mapped[str] = mapped_column(String(20), comment="patient, appointment or prescription")
    system: Mapped[str] = mapped_column(
        String(200), default="", server_default="",
        comment="whose id: '' for the clinic's scheduling system (the API), else a FHIR identifier system")
    value: Mapped[str] = mapped_column(String(200), comment="the id in that system")
    row_id: Mapped[int] = mapped_column(comment="the id of the patient, appointment or prescription")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


EVENT_TYPES = ("appointment.confirmed", "appointment.cancelled", "appointment.reschedule_requested",
               "appointment.no_show_recovered", "prescription.refill_requested", "patient.opted_out",
               "escalation.finished")


class WebhookEndpoint(Base):
    """A URL of the clinic's own systems that is told of events, signed with its secret."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinic.id", name="fk_webhook_endpoint_clinic_id"), index=True)
    url: Mapped[str] = mapped_column(String(500), comment="where events are POSTed")
    secret: Mapped[str] = mapped_column(
        String(100), comment="whsec_...: signs each delivery (Standard Webhooks); shown once when made")
    events: Mapped[str] = mapped_column(String(500), comment="space-separated event types it wants, or * for all")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None]


DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction that made the change (nothing is
    lost when a receiver or Redis is down), sent until it is taken or every attempt is used."""

    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoint.id", name="fk_webhook_delivery_endpoint_id"), index=True)
    message_id: Mapped[str] = mapped_column(
        String(40), unique=True, comment="webhook-id: the same on every attempt, so a receiver can drop repeats")
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text, comment="the JSON body, exactly as signed and sent")
    status: Mapped[str] = mapped_column(String(12), default="pending", server_default="pending", index=True,
                                        comment="pending, delivered, failed (every attempt used)")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]


class WebhookAttempt(Base):
    """One try at a delivery: when, what the receiver answered, how long it took."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_delivery.id", name="fk_webhook_attempt_delivery_id"), index=True)
    attempted_at: Mapped[dt.datetime]
    status_code: Mapped[int | None] = mapped_column(comment="the receiver's HTTP status; None: no answer")
    error: Mapped[str | None] = mapped_column(String(200), comment="why it failed, without the body")
    duration_ms: Mapped[int]


class AuditTrailIsAppendOnly(IvrError):
    """Raised when code tries to change or remove a CallEvent or a MessageEvent."""


@event.listens_for(CallEvent, "before_update")
@event.listens_for(CallEvent, "before_delete")
@event.listens_for(MessageEvent, "before_update")
@event.listens_for(MessageEvent, "before_delete")
def _forbid_rewriting_history(_mapper, _connection, target) -> None:
    raise AuditTrailIsAppendOnly(f"{target.__tablename__} {target.id} is part of the audit trail")
