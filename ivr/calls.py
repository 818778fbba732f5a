"""Calls in the database: find or open one, feed a step's result back, apply status callbacks."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from sqlalchemy import RowMapping, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import phonenumbers

import prompts
from prompts.spoken import (speakable_number, spoken_date, spoken_location, spoken_provider, spoken_time,
                            written_number)
from call_flows import (Enqueue, Escalate, EscalationEnded, Identify, OpenTask, OptOut, PlanCallBack, PlanRetry,
                        RememberLanguage, SetAppointmentStatus, Step, TextPatient)
from call_flows.twiml import hangup as hangup_twiml
from speech.common import SpeechModels
from speech.recognizer import can_hear_values, can_recognize
from ivr import events, tasks, touches
from ivr.inbound.hours import hours_of
from ivr.errors import ConcurrentChange
from ivr.models import (Appointment, Call, CallEvent, CallerLanguage, CarrierRecording, Clinic, Location,
                        Escalation, Patient, Prescription, StaffLine, Touch, utcnow)

# Status callbacks can arrive twice and out of order; a call only ever moves forward.
STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3,
               "completed": 4, "busy": 4, "failed": 4, "no-answer": 4, "canceled": 4}
TERMINAL = {status for status, rank in STATUS_RANK.items() if rank == 4}
UNREACHED = {"busy", "failed", "no-answer", "canceled"}


@dataclass(frozen=True)
class CallContext:
    """What prompts may say on this call, and where a transfer may go."""

    catalogue: prompts.Catalogue
    values: Mapping[str, str]
    staff_number: str | None
    speech_rate: int | None = None  # the patient's words per minute, when they have one
    senior: bool = False            # slower speech, longer waits, a question repeated before a miss
    staff_numbers: tuple[str, ...] = ()  # the staff lines an inbound caller may be put through to, in order
    pharmacy_number: str | None = None   # the pharmacy of the prescription a refill call is about


@dataclass(frozen=True)
class CallRecord:
    """One row with everything a webhook turn needs: the call's state and its appointment."""

    row: RowMapping

    @property
    def call_id(self) -> int:
        return self.row["call_id"]

    @property
    def flow(self) -> str:
        return self.row["flow"]

    @property
    def state(self) -> dict:
        return self.row["state"] or {}

    @property
    def appointment_id(self) -> int | None:
        return self.row["appointment_id"]

    @property
    def appointment_status(self) -> str | None:
        return self.row["appointment_status"]

    @property
    def staff_number(self) -> str | None:
        return self.row["staff_phone"]

    @property
    def number(self) -> int:
        """How many turns the call has had: the next answer must carry this number."""
        return self.row["turn"]

    @property
    def last_twiml(self) -> str | None:
        """What the caller was last told (their current question)."""
        return self.row["last_twiml"]

    def answers_current_question(self, turn: int | None) -> bool:
        """Whether a request carrying this turn number answers the question the caller is on.
        None (no number in the URL) is accepted only from a call that began before numbers did.
        A call that has ended has no question left: nothing answers it."""
        if self.row["call_ended_at"] is not None:
            return False
        return turn == self.number if turn is not None else self.last_twiml is None

    def facts(self, language: str, fallback_staff_number: str = "", *,
              speech_models: SpeechModels) -> dict[str, Any]:
        """What a flow may know about the configuration and the record's state (nothing about the
        patient). Voice answers need the clinic's consent and a recogniser for the language."""
        return {"can_transfer": bool(self.staff_number or fallback_staff_number),
                "voice_answers": bool(self.row["voice_answers"]) and can_recognize(language, speech_models),
                # Ring again rather than ask a person, once: only from an appointment's first reminder.
                "can_retry": bool(self.row["retry_wrong_person"]) and self.row["touch_step"] == "reminder"
                and self.row["appointment_id"] is not None,
                "appointment": self.appointment_fingerprint,
                "prescription": prescription_fingerprint(self.row),
                "can_reach_pharmacy": bool(self.row["pharmacy_phone"] or self.staff_number or fallback_staff_number)}

    @property
    def appointment_fingerprint(self) -> str | None:
        """What the patient is told about the appointment, as one opaque value: its status, time,
        place and provider. Any change by someone else during the call changes it."""
        return appointment_fingerprint(self.row)


def appointment_fingerprint(row: Mapping[str, Any]) -> str | None:
    """A row's appointment as the patient is told it (status, time, place, provider), as one
    opaque value; None when the row is about no appointment."""
    if row["appointment_id"] is None:
        return None
    if row.get("touch_patient_id") not in (None, row.get("appointment_patient_id")):
        # The visit was handed to another patient since its touch reached this one: whatever
        # they answer is not theirs to decide, and nothing of it is theirs to hear.
        return HANDED_OVER
    read = "|".join(str(row[name]) for name in _APPOINTMENT_AS_READ if name not in ("provider_name", "provider_title"))
    # The provider as one value, spelled as provider_name was before titles had a column of their
    # own (migration 0016): a reminder sent before the upgrade still matches its appointment.
    title = row["provider_title"]
    read += "|" + (f"{title.capitalize()} {row['provider_name']}" if title else str(row["provider_name"]))
    return hashlib.sha256(read.encode()).hexdigest()[:16]


def prescription_fingerprint(row: Mapping[str, Any]) -> str | None:
    """A row's prescription as a refill prompt is about it (which one, its medication, whether it
    is still active and when its refill is due), as one opaque value; None when there is none.
    A refill filled (its due date moves on) or stopped during a call or a text changes it."""
    if row["prescription_id"] is None:
        return None
    read = "|".join(str(row[name]) for name in ("prescription_id", "medication", "prescription_active",
                                                 "prescription_due_on"))
    return hashlib.sha256(read.encode()).hexdigest()[:16]


HANDED_OVER = "handed-over"

# What prompts on a call about an appointment (or a prescription) need to know (nothing more:
# prompts are lazy).
_PROMPT_COLUMNS = (
    Appointment.id.label("appointment_id"), Patient.id.label("patient_id"),
    Appointment.patient_id.label("appointment_patient_id"),
    Appointment.status.label("appointment_status"), Appointment.starts_at,
    Appointment.location_id,
    Appointment.provider_name, Appointment.provider_title, Location.name.label("location"),
    Location.timezone.label("location_timezone"), Patient.first_name,
    Patient.language, Patient.timezone, Patient.speech_rate, Clinic.name.label("clinic"),
    Clinic.phone.label("clinic_phone"), Clinic.staff_phone,
    Clinic.timezone.label("clinic_timezone"), Clinic.language.label("clinic_language"),
    Clinic.voice_answers, Patient.senior_mode.label("patient_senior"), Clinic.senior_mode.label("clinic_senior"),
    Clinic.holiday_country, Clinic.holiday_subdivision,
    Prescription.id.label("prescription_id"), Prescription.medication, Prescription.active.label("prescription_active"),
    Prescription.refill_due_on.label("prescription_due_on"), Prescription.pharmacy_phone)


def _joined_from_touch(statement):
    return (statement.outerjoin(Appointment, Touch.appointment_id == Appointment.id)
            .outerjoin(Location, Appointment.location_id == Location.id)
            .outerjoin(Prescription, Touch.prescription_id == Prescription.id)
            .outerjoin(Patient, Patient.id == func.coalesce(Appointment.patient_id, Touch.patient_id)))


# A Core query, not ORM objects: a webhook turn reads one row and writes two, and the ORM's
# identity map and unit of work cost more than the database does (bench/webhooks.py).
# A call's appointment (or prescription) and patient are its touch's (the patient it rang; an
# appointment handed to another since then reads as changed); an inbound call has them once the
# caller was identified (call.appointment_id, call.patient_id). The language an inbound caller's number
# chose before comes with it.
_TURN = (
    select(Call.id.label("call_id"), Call.call_sid, Call.flow, Call.state, Call.turn, Call.last_twiml,
           Call.ended_at.label("call_ended_at"), Call.clinic_id, Call.from_number.label("call_from"),
           Call.direction, Touch.id.label("touch_id"), Touch.step.label("touch_step"),
           Touch.patient_id.label("touch_patient_id"), Clinic.retry_wrong_person, Clinic.queue_callers,
           CallerLanguage.language.label("caller_language"), *_PROMPT_COLUMNS)
    .select_from(Call).outerjoin(Touch, Call.touch_id == Touch.id)
    .outerjoin(Appointment, Appointment.id == func.coalesce(Touch.appointment_id, Call.appointment_id))
    .outerjoin(Location, Appointment.location_id == Location.id)
    .outerjoin(Prescription, Prescription.id == Touch.prescription_id)
    .outerjoin(Patient, Patient.id == func.coalesce(Call.patient_id, Touch.patient_id, Appointment.patient_id))
    .outerjoin(Clinic, Call.clinic_id == Clinic.id)
    .outerjoin(CallerLanguage, (CallerLanguage.clinic_id == Call.clinic_id)
               & (CallerLanguage.phone == Call.from_number) & (Call.direction == "inbound"))
    .where(Call.call_sid == bindparam("sid")))
# A turn that will write locks its call row first (PostgreSQL; SQLite's BEGIN IMMEDIATE already
# serialises writers), so a duplicate of the same answer waits and then finds itself stale.
_TURN_FOR_UPDATE = _TURN.with_for_update(of=Call)
# The same for a touch that has no call yet (its prompts are rendered before it is dialled).
_TOUCH = (
    _joined_from_touch(select(Touch.flow, Touch.patient_id.label("touch_patient_id"), *_PROMPT_COLUMNS)
                       .select_from(Touch))
    .outerjoin(Clinic, Patient.clinic_id == Clinic.id)
    .where(Touch.id == bindparam("touch_id")))
# Statements built once: building and hashing a statement per execution cost more than running it.
_CALL, _EVENT, _APPOINTMENT = Call.__table__, CallEvent.__table__, Appointment.__table__
_UPDATE_CALL = _CALL.update().where(_CALL.c.id == bindparam("call_id_"))
# A turn moves the call on only from the turn it read (compare-and-set), and changes an
# appointment only from the status it read: anything else was changed by someone else meanwhile.
_ADVANCE_CALL = (_CALL.update().where(_CALL.c.id == bindparam("call_id_"), _CALL.c.turn == bindparam("turn_"))
                 .values(turn=_CALL.c.turn + 1))
_END_CALL_TURN = _CALL.update().where(_CALL.c.id == bindparam("call_id_")).values(turn=_CALL.c.turn + 1)
_UPDATE_APPOINTMENT = _APPOINTMENT.update().where(
    _APPOINTMENT.c.id == bindparam("appointment_id_"), _APPOINTMENT.c.status == bindparam("status_"),
    _APPOINTMENT.c.starts_at == bindparam("starts_at_"), _APPOINTMENT.c.location_id == bindparam("location_id_"),
    _APPOINTMENT.c.provider_name == bindparam("provider_name_"),
    _APPOINTMENT.c.provider_title.is_not_distinct_from(bindparam("provider_title_")))
# The columns of the appointment a call reads to the patient (and checks before changing it).
_APPOINTMENT_AS_READ = ("appointment_status", "starts_at", "location_id", "provider_name", "provider_title")
_PATIENT = Patient.__table__
_OPT_OUT = (_PATIENT.update().where(_PATIENT.c.id == bindparam("patient_id_"), _PATIENT.c.opted_out_at.is_(None))
            .values(opted_out_at=bindparam("at"), opted_out_source=bindparam("source")))
_INSERT_EVENT = _EVENT.insert()
_UPDATE_NUMBERS = (_CALL.update().where(_CALL.c.id == bindparam("call_id_"))
                   .values(from_number=func.coalesce(_CALL.c.from_number, bindparam("from_number")),
                           to_number=func.coalesce(_CALL.c.to_number, bindparam("to_number"))))


def load_call(session: Session, call_sid: str, *, lock: bool = False) -> CallRecord | None:
    """The call with this SID and what its prompts need, in one query; with lock, the call's
    row stays locked until the transaction ends (for a turn that will write)."""
    statement = _TURN_FOR_UPDATE if lock else _TURN
    row = session.connection().execute(statement, {"sid": call_sid}).mappings().one_or_none()
    return None if row is None else CallRecord(row)


_LOCK_CALL = (select(_CALL.c.id, _CALL.c.status, _CALL.c.outcome, _CALL.c.touch_id, _CALL.c.answered_by, _CALL.c.state)
              .where(_CALL.c.call_sid == bindparam("sid")).with_for_update())


def lock_call(session: Session, call_sid: str) -> RowMapping | None:
    """The call's progress, its row locked until commit (concurrent callbacks wait here)."""
    return session.connection().execute(_LOCK_CALL, {"sid": call_sid}).mappings().one_or_none()


def open_outbound_call(session: Session, call_sid: str, touch_id: int, *, status: str,
                       from_number: str | None = None, to_number: str | None = None) -> bool:
    """Make sure a call row exists for this SID; False when the touch does not exist. A row that a
    status callback created first gets the numbers it could not know."""
    existing = session.scalar(select(Call.id).where(Call.call_sid == call_sid))
    if existing is not None:
        if from_number or to_number:
            session.execute(_UPDATE_NUMBERS, {"call_id_": existing, "from_number": from_number,
                                              "to_number": to_number})
        return True
    found = session.execute(
        select(Touch.flow, Patient.clinic_id).join(Touch.patient).where(Touch.id == touch_id)).one_or_none()
    if found is None:
        return False
    _insert_call(session, call_sid=call_sid, direction="outbound-api", flow=found.flow,
                 touch_id=touch_id, clinic_id=found.clinic_id, from_number=from_number,
                 to_number=to_number, status=status)
    return True


def open_inbound_call(session: Session, call_sid: str, *, to_number: str, from_number: str | None,
                      flow: str = "inbound") -> bool:
    """Record a call to one of our clinics' numbers; False when no clinic has that number."""
    if session.scalar(select(Call.id).where(Call.call_sid == call_sid)) is not None:
        return True
    clinic_id = session.scalar(select(Clinic.id).where(Clinic.phone == to_number))
    if clinic_id is None:
        return False
    _insert_call(session, call_sid=call_sid, direction="inbound", flow=flow, touch_id=None,
                 clinic_id=clinic_id, from_number=from_number, to_number=to_number,
                 status="in-progress")
    return True


def _insert_call(session: Session, **values: Any) -> None:
    try:
        with session.begin_nested():
            session.execute(insert(Call).values(state={}, created_at=utcnow(), **values))
    except IntegrityError:
        pass  # the job or a concurrent webhook recorded it first


class _LazyValues(Mapping[str, str]):
    """Prompt values computed only when a prompt uses them (dates cost more than the rest)."""

    def __init__(self, makers: dict[str, Callable[[], str]]) -> None:
        self._makers, self._made = makers, {}

    def __getitem__(self, key: str) -> str:
        if key not in self._made:
            self._made[key] = self._makers[key]()
        return self._made[key]

    def __iter__(self):
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def context_for(call: CallRecord, fallback_staff_number: str = "", medications: tuple[str, ...] = (),
                state: Mapping[str, Any] | None = None, opens: dt.datetime | None = None) -> CallContext:
    """Prompt values for a call, in the patient's (else the clinic's) language and time zone;
    an inbound call speaks the language its caller chose (this call, else before: `state` is the
    call's state when it is newer than the record's), and the identified caller's active
    prescriptions are `medication_1`..., and `opens` when a closed clinic opens again. Values about
    an appointment are only there when the call is about one."""
    state = call.state if state is None else state
    chosen = (state.get("language"), call.row["caller_language"]) if call.row["direction"] == "inbound" else ()
    return _context(call.row, fallback_staff_number, languages=chosen, medications=medications, opens=opens)


# An appointment a caller can still confirm or cancel.
UPCOMING = ("booked", "confirmed")


@dataclass(frozen=True)
class Turn:
    """What a turn of a call knows before its step: how prompts are said, and the flow's facts."""

    context: CallContext
    facts: dict[str, Any]


def turn_for(session: Session, call: CallRecord, fallback_staff_number: str, speech_models: SpeechModels,
             now: dt.datetime, state: Mapping[str, Any] | None = None) -> Turn:
    """The context and facts of a turn. An inbound call also learns the languages on offer, the
    patients of the caller's number with their dates of birth (until one is identified), and the
    identified caller's next appointment and active prescriptions."""
    inbound = call.row["direction"] == "inbound"
    prescriptions = active_prescriptions(session, call.row["patient_id"]) if inbound else []
    hours = hours_of(session, call.row["clinic_id"]) if inbound and call.row["clinic_id"] else None
    is_open = hours is None or hours.is_open(now)
    opens = None if is_open else hours.next_opening(now)
    context = context_for(call, fallback_staff_number, tuple(name for _, name in prescriptions), state, opens)
    if inbound and context.staff_number:
        context = replace(context, staff_numbers=(context.staff_number, *staff_lines(session, call.row["clinic_id"])))
    facts = call.facts(context.catalogue.language, fallback_staff_number, speech_models=speech_models)
    facts["senior"] = context.senior
    if facts["can_reach_pharmacy"] and call.row["prescription_id"] is not None and not call.row["pharmacy_phone"]:
        # The pharmacy team is the clinic's staff: only while the clinic is open.
        staffed = hours_of(session, call.row["clinic_id"]) if call.row["clinic_id"] else None
        facts["can_reach_pharmacy"] = staffed is None or staffed.is_open(now)
    if inbound:
        row = call.row
        facts.update(open=is_open, opens_known=opens is not None, staff_lines=len(context.staff_numbers),
                     queue=bool(row["queue_callers"]) and bool(context.staff_number),
                     language=context.catalogue.language, languages=prompts.language_choices(),
                     can_call_back=can_call_back(row["call_from"], row["clinic_phone"]),
                     can_hear_dates=can_hear_values(context.catalogue.language, speech_models),
                     prescriptions=[prescription_id for prescription_id, _ in prescriptions])
        if row["patient_id"] is None:
            facts["dob_locked"] = wrong_dates_lately(session, row["clinic_id"], row["call_from"], now) >= DOB_TRIES_PER_DAY
            facts["callers"] = _callers(session, row["clinic_id"], row["call_from"])
            facts["number_known"] = bool(facts["callers"]) or _number_known(session, row["clinic_id"],
                                                                            row["call_from"])
            facts["appointment"] = None
        elif row["appointment_status"] not in UPCOMING or row["starts_at"] <= now:
            facts["appointment"] = None
    return Turn(context, facts)


def _callers(session: Session, clinic_id: int, phone: str | None) -> list[dict[str, Any]]:
    """The clinic's patients on a number, with the date of birth that proves each of them."""
    if phone is None:
        return []
    rows = session.execute(select(Patient.id, Patient.date_of_birth).where(
        Patient.clinic_id == clinic_id, Patient.phone == phone, Patient.date_of_birth.is_not(None))
        .order_by(Patient.id))
    return [{"patient": patient_id, "dob": born.strftime("%m%d%Y")} for patient_id, born in rows]


def staff_lines(session: Session, clinic_id: int | None) -> list[str]:
    """The numbers tried, in order, after a clinic's staff phone."""
    return list(session.scalars(select(StaffLine.phone).where(StaffLine.clinic_id == clinic_id)
                                .order_by(StaffLine.position)))


# Numbers a call back may ring: ordinary lines, never premium, shared-cost or other paid ones.
_CALLABLE_TYPES = frozenset({phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                             phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


def can_call_back(caller: str | None, clinic_phone: str | None) -> bool:
    """Whether we may ring a caller's number back: a caller ID can be forged, so only an ordinary
    line or mobile in the clinic's own country (no toll fraud through our call backs)."""
    if not caller or not clinic_phone:
        return False
    try:
        number, clinic = phonenumbers.parse(caller, None), phonenumbers.parse(clinic_phone, None)
    except phonenumbers.NumberParseException:
        return False
    return (phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) == phonenumbers.region_code_for_number(clinic)
            and phonenumbers.number_type(number) in _CALLABLE_TYPES)


# Wrong dates of birth a number may give in a day before a person must check who is calling: two
# calls' worth. (Eight digits are easy to guess from a birthday card; a guesser calls again.)
DOB_TRIES_PER_DAY = 4
WRONG_DATE_WINDOW = dt.timedelta(hours=24)


def wrong_dates_lately(session: Session, clinic_id: int, phone: str | None, now: dt.datetime) -> int:
    """How many dates of birth that matched no one a number gave a clinic in the last day."""
    if phone is None:
        return 0
    details = session.scalars(select(CallEvent.detail).join(Call, Call.id == CallEvent.call_id).where(
        Call.clinic_id == clinic_id, Call.from_number == phone, Call.direction == "inbound",
        CallEvent.kind == "step", CallEvent.at > now - WRONG_DATE_WINDOW))
    return sum(1 for detail in details if detail.get("decision") == "identity_not_matched")


def _number_known(session: Session, clinic_id: int, phone: str | None) -> bool:
    """Whether any patient of the clinic has the number (said to staff only)."""
    return phone is not None and session.scalar(select(Patient.id).where(
        Patient.clinic_id == clinic_id, Patient.phone == phone).limit(1)) is not None


def follow_next_appointment(session: Session, call: CallRecord, now: dt.datetime) -> CallRecord:
    """An identified caller's call is about their next appointment that is still on: after they
    cancel it, or when staff book, move or hand one to another patient during the call, the call
    moves to the one that is next now (the flow notices the change by its fingerprint)."""
    row = call.row
    if row["direction"] != "inbound" or row["patient_id"] is None:
        return call
    current = row["appointment_id"]
    still = (current is not None and row["appointment_status"] in UPCOMING and row["starts_at"] > now
             and session.scalar(select(Appointment.patient_id).where(Appointment.id == current)) == row["patient_id"])
    if still:
        return call
    following = next_appointment_id(session, row["patient_id"], now)
    if following == current:
        return call
    session.execute(_CALL.update().where(_CALL.c.id == call.call_id).values(appointment_id=following))
    return load_call(session, row["call_sid"], lock=True)


def active_prescriptions(session: Session, patient_id: int | None) -> list[tuple[int, str]]:
    """(id, medication) of a patient's prescriptions that can be refilled, in a stable order."""
    if patient_id is None:
        return []
    return [tuple(row) for row in session.execute(
        select(Prescription.id, Prescription.medication)
        .where(Prescription.patient_id == patient_id, Prescription.active.is_(True)).order_by(Prescription.id))]


def next_appointment_id(session: Session, patient_id: int, now: dt.datetime) -> int | None:
    """The patient's next appointment that is still on."""
    return session.scalar(select(Appointment.id).where(
        Appointment.patient_id == patient_id, Appointment.status.in_(UPCOMING), Appointment.starts_at > now)
        .order_by(Appointment.starts_at, Appointment.id).limit(1))


def apply_before_speaking(session: Session, call: CallRecord, step: Step, now: dt.datetime) -> CallRecord:
    """Apply what changes the words of the step itself: an identified caller (their name, their
    appointment) and a chosen language. Returns the call as it now reads; record_step notes both."""
    changed = False
    for effect in step.effects:
        if isinstance(effect, Identify):
            session.execute(_CALL.update().where(_CALL.c.id == call.call_id).values(
                patient_id=effect.patient_id,
                appointment_id=next_appointment_id(session, effect.patient_id, now)))
            changed = True
        elif isinstance(effect, RememberLanguage) and call.row["call_from"] and call.row["clinic_id"]:
            _remember_language(session, call.row["clinic_id"], call.row["call_from"], effect.language, now)
            changed = True
    if not changed:
        return call
    return load_call(session, call.row["call_sid"], lock=True)


def _remember_language(session: Session, clinic_id: int, phone: str, language: str, now: dt.datetime) -> None:
    """The number's language for next time (one row per clinic and number)."""
    updated = session.execute(CallerLanguage.__table__.update().where(
        CallerLanguage.clinic_id == clinic_id, CallerLanguage.phone == phone).values(
        language=language, chosen_at=now)).rowcount
    if updated:
        return
    try:
        with session.begin_nested():
            session.execute(insert(CallerLanguage).values(clinic_id=clinic_id, phone=phone, language=language,
                                                          chosen_at=now))
    except IntegrityError:  # another call from the number chose at the same moment
        pass


def touch_context(session: Session, touch_id: int) -> tuple[str, CallContext] | None:
    """The flow of a touch and what its call's prompts will say, before the call exists."""
    row = touch_row(session, touch_id)
    return None if row is None else (row["flow"], _context(row))


def touch_row(session: Session, touch_id: int) -> RowMapping | None:
    """A touch with what its call's prompts or its texts need: patient, appointment, clinic."""
    return session.connection().execute(_TOUCH, {"touch_id": touch_id}).mappings().one_or_none()


def text_context(row: RowMapping) -> CallContext:
    """What a text about this row's appointment may say: as a call's values, but the clinic's
    number written as people write it, for reading and tapping."""
    return _context(row, for_texts=True)


def _context(row: RowMapping, fallback_staff_number: str = "", for_texts: bool = False,
             languages: tuple[str | None, ...] = (), medications: tuple[str, ...] = (),
             opens: dt.datetime | None = None) -> CallContext:
    catalogue = prompts.first_available(*languages, row["language"], row["clinic_language"])
    # A visit happens on the clock of its place; the patient's own zone only decides whether
    # that zone must be named (and, elsewhere, when they may be rung).
    place_zone = row["location_timezone"] or row["clinic_timezone"]
    listener_zone = row["timezone"] or row["clinic_timezone"]
    values = _LazyValues({
        **clinic_values(row["clinic"], row["clinic_phone"], for_texts),
        "first_name": lambda: row["first_name"],
        "date": lambda: spoken_date(row["starts_at"], place_zone, catalogue),
        "time": lambda: spoken_time(row["starts_at"], place_zone, listener_zone, catalogue),
        "location": lambda: spoken_location(row["location"], catalogue),
        "provider": lambda: spoken_provider(row["provider_name"], row["provider_title"], catalogue),
        **{f"medication_{n}": (lambda name=name: name) for n, name in enumerate(medications, 1)},
        # The prescription a refill prompt is about (only such a call or text has one).
        **({"medication": lambda: row["medication"]} if row["medication"] is not None else {}),
        # When a closed clinic opens again, on its own clock (a caller's zone is not known).
        **({"opens": lambda: catalogue.text("phrases.when", {
            "date": spoken_date(opens, row["clinic_timezone"], catalogue),
            "time": spoken_time(opens, row["clinic_timezone"], row["clinic_timezone"], catalogue)})}
           if opens is not None else {}),
    })
    senior = is_senior(row["patient_senior"], row["clinic_senior"])
    rate = row["speech_rate"] or (round(catalogue.tts_rate * SENIOR_RATE) if senior else None)
    return CallContext(catalogue, values, row["staff_phone"] or fallback_staff_number or None, rate, senior,
                       pharmacy_number=row["pharmacy_phone"])


# How much slower than the catalogue's rate prompts are said in senior mode (150 -> 120 words a
# minute in English), unless the patient has a rate of their own.
SENIOR_RATE = 0.8


def is_senior(patient_setting: bool | None, clinic_default: bool | None) -> bool:
    """Senior mode: the patient's own setting, else the clinic's default (a caller not yet
    identified gets the clinic's)."""
    return bool(clinic_default) if patient_setting is None else bool(patient_setting)


def clinic_values(name: str, phone: str, for_texts: bool = False) -> dict[str, Callable[[], str]]:
    """How prompts say a clinic's values (the same in calls and in `ivr prompts render`, or
    pre-rendered audio would never match a call's words); texts write the number as people do."""
    return {"clinic": lambda: name,
            "clinic_phone": lambda: written_number(phone) if for_texts else speakable_number(phone)}


def record_step(session: Session, call: CallRecord, step: Step, caller_input: dict | None,
                twiml: str, said: list[str] | None = None) -> list[int]:
    """Move the call on by one turn: save the next state and what the caller is now told, apply
    the step's effects, and append one audit event for the turn: what the caller did, what was
    decided, what changed and which prompts were spoken (and, as `carrier_voice`, those of them
    said by the carrier's voice because no audio was rendered). Returns the ids of the texts it
    queued (to send once the transaction commits). Raises ConcurrentChange when the call or the
    appointment is no longer as this turn read it."""
    connection, now = session.connection(), utcnow()
    detail: dict = {"turn": call.number, "input": caller_input, "decision": step.decision,
                    "prompts": step.prompts()}
    if said:
        detail["carrier_voice"] = said
    call_changes: dict = {"call_id_": call.call_id, "turn_": call.number, "state": dict(step.state),
                          "last_twiml": twiml}
    if step.outcome:
        call_changes["outcome"] = detail["outcome"] = step.outcome
    if connection.execute(_ADVANCE_CALL, call_changes).rowcount != 1:
        raise ConcurrentChange(f"call {call.call_id} moved past turn {call.number}")
    texts_to_send: list[int] = []
    if call.row["prescription_id"] is not None and any(isinstance(e, OpenTask) and e.kind == "refill_request"
                                                       for e in step.effects):
        _check_prescription_unchanged(connection, call)
    for effect in step.effects:
        if isinstance(effect, SetAppointmentStatus):
            changed = connection.execute(_UPDATE_APPOINTMENT, {
                "appointment_id_": call.appointment_id, "status_": call.appointment_status,
                "starts_at_": call.row["starts_at"], "location_id_": call.row["location_id"],
                "provider_name_": call.row["provider_name"], "provider_title_": call.row["provider_title"],
                "status": effect.status, "status_changed_at": now}).rowcount
            if changed != 1:
                raise ConcurrentChange(f"appointment {call.appointment_id} changed during the turn")
            # Its campaign's later steps are not wanted any more, whatever the new status.
            touches.cancel_pending(connection, call.appointment_id, f"appointment {effect.status}", now)
            if effect.status != call.appointment_status:  # (confirming a confirmed visit changes nothing)
                events.appointment_changed(session, call.row["clinic_id"], call.appointment_id, effect.status,
                                           "voice")
            detail.setdefault("changes", []).append(
                {"appointment_id": call.appointment_id, "status_from": call.appointment_status,
                 "status_to": effect.status})
        elif isinstance(effect, OptOut):
            patient_id = call.row["patient_id"]
            detail.setdefault("changes", []).append({"patient_id": patient_id, "opted_out": True,
                                                     "source": effect.source})
            opted_out = connection.execute(_OPT_OUT, {"patient_id_": patient_id, "at": now,
                                                      "source": effect.source}).rowcount
            if opted_out and call.row["clinic_id"] is not None:  # (not when they had opted out already)
                clinic_id = call.row["clinic_id"]
                events.emit(session, clinic_id, "patient.opted_out",
                            lambda: events.patient_data(session, clinic_id, patient_id, channel="voice"))
        elif isinstance(effect, OpenTask):
            task_id = _open_task(connection, call, effect, now)
            events.task_opened(session, call.row["clinic_id"], effect.kind, task_id,
                               appointment_id=call.appointment_id,
                               prescription_id=effect.prescription_id or call.row["prescription_id"], channel="voice")
            detail.setdefault("changes", []).append({"task_id": task_id, "task": effect.kind})
        elif isinstance(effect, PlanRetry):
            detail.setdefault("changes", []).append({"retry_touch_id": _plan_retry(connection, call, effect, now)})
        elif isinstance(effect, Identify):  # applied before the step spoke (apply_before_speaking)
            detail.setdefault("changes", []).append({"identified_patient_id": effect.patient_id,
                                                     "appointment_id": call.appointment_id})
        elif isinstance(effect, RememberLanguage):
            detail.setdefault("changes", []).append({"language": effect.language})
        elif isinstance(effect, TextPatient):
            sent, why = _text_patient(session, call, effect)
            texts_to_send.extend(sent)
            detail.setdefault("changes", []).append({"text_id": sent[0]} if sent else {"text_not_sent": why})
        elif isinstance(effect, Escalate):
            connection.execute(insert(Escalation).values(
                call_id=call.call_id, clinic_id=call.row["clinic_id"], reason=effect.reason,
                verified=call.row["patient_id"] is not None, started_at=now))
            detail.setdefault("changes", []).append({"escalation": effect.reason})
        elif isinstance(effect, PlanCallBack):
            # Once: a call back planned already (at the queue's key) may be under way by now.
            connection.execute(Escalation.__table__.update().where(Escalation.call_id == call.call_id,
                                                                   Escalation.callback_status.is_(None))
                               .values(callback_status="planned"))
            detail.setdefault("changes", []).append({"callback": "planned"})
        elif isinstance(effect, EscalationEnded):
            ended: dict[str, Any] = {"outcome": effect.outcome, "ended_at": now}
            if effect.outcome == "answered":
                numbers = (call.staff_number, *staff_lines(session, call.row["clinic_id"]))
                ended.update(answered_at=now, staff_phone=numbers[effect.line] if effect.line is not None
                             and effect.line < len(numbers) else call.staff_number)
            connection.execute(Escalation.__table__.update().where(
                Escalation.call_id == call.call_id, Escalation.outcome.is_(None)).values(**ended))
            detail.setdefault("changes", []).append({"escalation_outcome": effect.outcome})
    if any(isinstance(action, Enqueue) for action in step.actions):
        # The caller now waits in their queue; the shell rings the staff lines for them.
        connection.execute(Escalation.__table__.update().where(
            Escalation.call_id == call.call_id, Escalation.queue_status.is_(None))
            .values(queue_status="waiting", ring_line=0, ring_call_sid=None))
    connection.execute(_INSERT_EVENT, {"call_id": call.call_id, "at": now, "kind": "step",
                                       "detail": detail})
    return texts_to_send


_PRESCRIPTION = Prescription.__table__
_LOCK_PRESCRIPTION = (select(_PRESCRIPTION.c.id.label("prescription_id"), _PRESCRIPTION.c.medication,
                             _PRESCRIPTION.c.active.label("prescription_active"),
                             _PRESCRIPTION.c.refill_due_on.label("prescription_due_on"))
                      .where(_PRESCRIPTION.c.id == bindparam("prescription_id_")).with_for_update(key_share=True))


def _check_prescription_unchanged(connection, call: CallRecord) -> None:
    """Lock the prescription a refill is asked for and make sure it is what the turn read:
    stopped or filled meanwhile (staff, another call), the turn runs again and says so."""
    now = connection.execute(_LOCK_PRESCRIPTION, {"prescription_id_": call.row["prescription_id"]}).mappings().one()
    if prescription_fingerprint(now) != prescription_fingerprint(call.row):
        raise ConcurrentChange(f"prescription {call.row['prescription_id']} changed during the turn")


def _text_patient(session: Session, call: CallRecord, effect: TextPatient) -> tuple[list[int], str | None]:
    """Queue the text a call promised the patient: ([its id], None), or ([], why it cannot go)
    when their number cannot take texts or asked for none."""
    from ivr.messaging import texts

    patient = session.get(Patient, call.row["patient_id"]) if call.row["patient_id"] is not None else None
    if patient is None:
        return [], "no patient"
    why = texts.textable(patient.phone) or (
        "the number opted out" if texts.opted_out(session, patient.clinic_id, patient.phone) else None)
    if why is not None:
        return [], why
    context = text_context(call.row)
    return [texts.queue_text(session, clinic_id=patient.clinic_id, to=patient.phone, from_=call.row["clinic_phone"],
                             body=texts.text_for(context.catalogue, effect.prompt, context.values),
                             kind="confirmation", patient_id=patient.id, appointment_id=call.appointment_id,
                             call_id=call.call_id, touch_id=call.row["touch_id"])], None


def _escalation_finished(session: Session, call_id: int) -> None:
    """The caller's call ended: how their hand-over to a person ended, for the clinic's systems."""
    escalation = session.execute(select(Escalation.id, Escalation.clinic_id, Escalation.reason, Escalation.verified,
                                        Escalation.outcome, Escalation.started_at, Escalation.answered_at)
                                 .where(Escalation.call_id == call_id)).one_or_none()
    if escalation is None or not events.wanted_by(session, escalation.clinic_id, "escalation.finished"):
        return
    waited = escalation.answered_at and int((escalation.answered_at - escalation.started_at).total_seconds())
    events.emit(session, escalation.clinic_id, "escalation.finished", {
        "escalation_id": escalation.id, "call_id": call_id, "reason": escalation.reason,
        "verified": escalation.verified, "outcome": escalation.outcome, "seconds_to_a_person": waited})


def _open_task(connection, call: CallRecord, effect: OpenTask, now) -> int:
    """The task a prompt just promised, about this call's patient (or caller) and appointment."""
    zone = call.row["clinic_timezone"] or "UTC"
    return tasks.open_task(
        connection, kind=effect.kind, clinic_id=call.row["clinic_id"], patient_id=call.row["patient_id"],
        appointment_id=call.appointment_id, call_id=call.call_id,
        prescription_id=effect.prescription_id or call.row["prescription_id"],
        voicemail=effect.voicemail,
        phone=None if call.row["patient_id"] else call.row["call_from"],
        due=tasks.due_at(now, zone, call.row["clinic_phone"], effect.within_business_days,
                         call.row["holiday_country"], call.row["holiday_subdivision"]))


def _plan_retry(connection, call: CallRecord, effect: PlanRetry, now) -> int | None:
    """Another reminder touch for the appointment, due in `after_days` (calling hours move it
    into the patient's window; reconcile queues it). Unique per appointment and step: once."""
    if call.appointment_id is None:
        return None
    try:
        with connection.begin_nested():
            return connection.execute(insert(Touch).values(
                appointment_id=call.appointment_id, patient_id=call.row["patient_id"], step="reminder-retry-1",
                flow=call.flow, channel="voice",
                due_at=now + dt.timedelta(days=effect.after_days), status="planned", attempts=0,
                updated_at=now, test_call=False)).inserted_primary_key[0]
    except IntegrityError:
        return None  # planned already


def record_stale_answer(session: Session, call: CallRecord, answered: int | None,
                        caller_input: dict | None) -> None:
    """Note a request that answered an earlier question (a duplicate or a replay): it changed
    nothing, and the caller was told their current question again."""
    session.connection().execute(_INSERT_EVENT, {
        "call_id": call.call_id, "at": utcnow(), "kind": "stale_answer",
        "detail": {"turn": answered, "current_turn": call.number, "input": caller_input}})


def record_failure(session: Session, call: CallRecord, error: BaseException, failure: Step,
                   twiml: str) -> None:
    """Note on the call that a step failed and what the caller heard instead (no message: PHI).
    The failure ends the flow, so it takes a turn of its own whatever turn it interrupted."""
    connection, now = session.connection(), utcnow()
    connection.execute(_END_CALL_TURN, {"call_id_": call.call_id, "outcome": failure.outcome,
                                        "state": dict(failure.state), "last_twiml": twiml})
    detail: dict = {"error": type(error).__name__, "prompts": failure.prompts()}
    for effect in failure.effects:
        if isinstance(effect, OpenTask):  # the call-back the apology promises
            detail.setdefault("changes", []).append({"task_id": _open_task(connection, call, effect, now),
                                                     "task": effect.kind})
    connection.execute(_INSERT_EVENT, {"call_id": call.call_id, "at": now, "kind": "error", "detail": detail})


def record_staff_choice(session: Session, call_sid: str, accepted: bool) -> None:
    """Note on a caller's call that staff took it, or passed it, at the whisper. Taken, the call
    and its escalation are answered at once: the caller's own status callback may come before
    the transfer's result, and must not find an escalation abandoned or a caller nobody served."""
    call = load_call(session, call_sid, lock=True)
    if call is None:
        return
    now = utcnow()
    session.connection().execute(_INSERT_EVENT, {"call_id": call.call_id, "at": now, "kind": "staff",
                                                 "detail": {"accepted": accepted}})
    if not accepted:
        return
    line = int(call.state.get("line", 0))
    numbers = (call.staff_number, *staff_lines(session, call.row["clinic_id"]))
    session.execute(Escalation.__table__.update().where(
        Escalation.call_id == call.call_id, Escalation.outcome.is_(None)).values(
        outcome="answered", answered_at=now, ended_at=now,
        staff_phone=numbers[line] if line < len(numbers) else call.staff_number))
    session.execute(_CALL.update().where(_CALL.c.id == call.call_id, _CALL.c.outcome.is_(None))
                    .values(outcome="transferred"))


def staff_passed(session: Session, call_sid: str) -> bool:
    """Whether the last choice staff made at this call's whisper was to pass it (a transfer the
    carrier reports completed was then not taken: the staff leg answered only to decline)."""
    last = session.scalars(select(CallEvent.detail).join(Call, Call.id == CallEvent.call_id).where(
        Call.call_sid == call_sid, CallEvent.kind == "staff").order_by(CallEvent.id.desc()).limit(1)).first()
    return last is not None and not last.get("accepted")


def call_back_of(session: Session, escalation_id: int) -> tuple[CallRecord, bool] | None:
    """The caller's call behind a planned call back, and whether they had proved who they are."""
    found = session.execute(select(Call.call_sid, Escalation.verified).join(Escalation, Escalation.call_id == Call.id)
                            .where(Escalation.id == escalation_id)).one_or_none()
    if found is None:
        return None
    call = load_call(session, found.call_sid)
    return (call, bool(found.verified)) if call is not None else None


def start_connecting(session: Session, escalation_id: int, staff_sid: str) -> bool:
    """Staff took the call back: dialing -> connecting, from the staff call this call back placed
    (its SID, once the job has recorded it). False: a replay, or too late."""
    table = Escalation.__table__
    return session.execute(table.update().where(
        table.c.id == escalation_id, table.c.callback_status == "dialing",
        (table.c.callback_call_sid.is_(None)) | (table.c.callback_call_sid == staff_sid))
        .values(callback_status="connecting")).rowcount == 1


def finish_call_back(session: Session, escalation_id: int, *, connected: bool, staff_call_ended: bool = False) -> None:
    """The caller was dialled: connected (done) or not (failed: a call_back task, once). When the
    staff call itself ends first, only a call back that never reached the caller fails: one
    that is connecting waits for its result."""
    from outbound.callbacks import fail

    if connected:
        session.execute(Escalation.__table__.update().where(
            Escalation.id == escalation_id, Escalation.callback_status == "connecting")
            .values(callback_status="done", answered_at=utcnow()))
        return
    fail(session, escalation_id, states=("planned", "dialing") if staff_call_ended else ("connecting",))


def note_recording(session: Session, sid: str, call_id: int | None) -> int:
    """The row of a recording the carrier holds (made once, however often it is reported)."""
    found = session.scalar(select(CarrierRecording.id).where(CarrierRecording.sid == sid))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            recording = CarrierRecording(sid=sid, call_id=call_id)
            session.add(recording)
        return recording.id
    except IntegrityError:  # a duplicate of the same request noted it first
        return session.scalar(select(CarrierRecording.id).where(CarrierRecording.sid == sid))


def apply_status(session: Session, call_sid: str, status: str, answered_by: str | None,
                 touch_id: int | None = None, attempt: int | None = None) -> bool:
    """Record a status callback; False when it is a duplicate, would move the call backwards,
    or names a call we never heard of. A callback can come before the job recorded the SID:
    the touch id in its URL says which call it is, and the attempt whether it is the touch's
    current call (a late callback of an earlier attempt is recorded on its call only)."""
    call = lock_call(session, call_sid)
    if call is None:
        if touch_id is None or not open_outbound_call(session, call_sid, touch_id, status="queued"):
            return False
        call = lock_call(session, call_sid)
        # The job that dialled has not recorded the SID yet (or never will: it died): the touch
        # gets it here, so that it is never dialled again as if no call had been placed.
        current = update(Touch).where(Touch.id == touch_id, Touch.call_sid.is_(None),
                                      Touch.status.in_(touches.IN_FLIGHT))
        if attempt is not None:
            current = current.where(Touch.attempts == attempt)
        session.execute(current.values(call_sid=call_sid))
    if STATUS_RANK[status] <= STATUS_RANK.get(call["status"], 0):
        return False
    connection, now = session.connection(), utcnow()
    changes: dict = {"call_id_": call["id"], "status": status}
    if answered_by:
        changes["answered_by"] = answered_by
    if status in TERMINAL:
        changes["ended_at"] = now
        # What the caller was last told (names, dates) need not outlive the call: a late
        # request for an ended call only hears the line close.
        changes["last_twiml"] = hangup_twiml()
        if call["outcome"] is None:
            # Put through to the pharmacy, the call ends when they do (before the Dial reports).
            put_through = (call["state"] or {}).get("node") == "pharmacy"
            changes["outcome"] = ("unreached" if status in UNREACHED else "to_pharmacy" if put_through
                                  else "hung_up")
        # A caller who hangs up while being put through gave up waiting.
        connection.execute(Escalation.__table__.update().where(
            Escalation.call_id == call["id"], Escalation.outcome.is_(None)).values(outcome="abandoned", ended_at=now))
        _escalation_finished(session, call["id"])
        # Nor is a caller who hung up in the queue waiting any more: no staff line is rung for them.
        connection.execute(Escalation.__table__.update().where(
            Escalation.call_id == call["id"], Escalation.queue_status == "waiting").values(queue_status="gone"))
        if call["touch_id"] is not None:
            touches.after_call(connection, call["touch_id"], call_sid, status, answered_by or call["answered_by"], now,
                               attempt)
    connection.execute(_UPDATE_CALL, changes)
    connection.execute(_INSERT_EVENT, {"call_id": call["id"], "at": now, "kind": "status",
                                       "detail": {"from": call["status"], "to": status}})
    return True
