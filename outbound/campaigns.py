"""Campaign planning: turn each clinic's cadence of steps into touches, one per (subject, step),
each due inside the patient's own calling window, and say why anything is held back. A subject
is an appointment (reminders before it, recovery after a missed one) or a prescription's refill
due on a day (refill prompts around that day; the next fill is a new subject).

The planner reads appointments in batches and writes touches in bulk (a touch that exists
already is left alone, so two planners running at once plan each contact once). It plans; the
touch's job checks everything again when it is due (outbound/jobs.py), because a patient can
opt out or an appointment change between the two.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ivr.messaging.texts import textable
from ivr.models import Appointment, Campaign, CampaignStep, Patient, PhoneOptOut, Prescription, Touch
from outbound.hours import contact_time
from outbound.planning import RECOVERY_FLOWS, RECOVERY_WINDOW, REFILL_FLOWS, REFILL_WINDOW, REMINDER_FLOWS

REMINDER, NO_SHOW, REFILL = "reminder", "no_show", "refill"
PURPOSES = (REMINDER, NO_SHOW)          # steps about an appointment (REFILL: about a prescription)

BATCH = 2000


@dataclass
class CampaignPlan:
    """What a planning run found: contacts by (local day, channel, step) and why others wait."""

    planned: Counter = field(default_factory=Counter)   # (day, channel, step) -> contacts
    held: Counter = field(default_factory=Counter)      # (step, reason) -> contacts
    written: int = 0                                    # touches created (a run, not a preview)
    appointments: int = 0                               # appointments looked at

    @property
    def total(self) -> int:
        """Contacts planned in the range."""
        return sum(self.planned.values())


def active_campaigns(session: Session, clinic_id: int | None = None) -> list[Campaign]:
    """Every active campaign with its steps (one clinic's, when given)."""
    query = select(Campaign).where(Campaign.active).options(selectinload(Campaign.steps),
                                                            selectinload(Campaign.clinic))
    if clinic_id is not None:
        query = query.where(Campaign.clinic_id == clinic_id)
    return list(session.scalars(query.order_by(Campaign.clinic_id, Campaign.id)))


def campaign_appointments(session: Session, campaign: Campaign, now: dt.datetime, until: dt.datetime,
                          purpose: str = REMINDER, appointment_id: int | None = None):
    """The query for the appointments a campaign covers with a step of `purpose` due before
    `until`: booked ones ahead (reminders), or ones missed within the week (recovery); of its
    type, or (a campaign for every type) of a type no active campaign of the clinic claims."""
    earliest = min(step.offset_minutes for step in steps_for(campaign, purpose))
    if purpose == REMINDER:
        status, starts_after = "booked", now
    else:
        status, starts_after = "no_show", now - RECOVERY_WINDOW
    query = (select(Appointment, Patient).join(Appointment.patient)
             .where(Patient.clinic_id == campaign.clinic_id, Appointment.status == status,
                    Appointment.starts_at > starts_after,
                    Appointment.starts_at <= until - dt.timedelta(minutes=earliest)))
    if appointment_id is not None:
        query = query.where(Appointment.id == appointment_id)
    if campaign.appointment_type is not None:
        return query.where(Appointment.appointment_type == campaign.appointment_type)
    # A campaign for one type claims it for the purposes it has steps for: a type whose campaign
    # only reminds still gets the clinic's general campaign's recovery, and the other way round.
    typed = select(Campaign.appointment_type).where(
        Campaign.clinic_id == campaign.clinic_id, Campaign.active, Campaign.appointment_type.is_not(None),
        _has_steps(purpose))
    return query.where(or_(Appointment.appointment_type.is_(None), Appointment.appointment_type.not_in(typed)))


def _has_steps(purpose: str):
    """Whether a campaign (in the enclosing query) has steps of a purpose."""
    return select(CampaignStep.id).where(CampaignStep.campaign_id == Campaign.id,
                                         CampaignStep.purpose == purpose).exists()


def steps_for(campaign: Campaign, purpose: str) -> list[CampaignStep]:
    """The campaign's steps of one purpose, in order."""
    return [step for step in campaign.steps if step.purpose == purpose]


def plan_campaigns(session: Session, now: dt.datetime, until: dt.datetime, *, since: dt.datetime | None = None,
                   clinic_id: int | None = None, appointment_id: int | None = None, write: bool = False,
                   writer: Callable[[list[dict]], int] | None = None,
                   progress: Callable[[int], None] | None = None) -> CampaignPlan:
    """Plan every active campaign's steps due before `until` (and, for a preview, at or after
    `since`); with write, create their touches in the session's transaction, or with `writer`,
    hand each batch of touches to it (`batch_writer`: a transaction per batch, so that a long run
    does not hold SQLite's one writer lock away from webhooks). `progress` is told how many
    appointments (and prescriptions) each batch held."""
    if write and writer is None:
        writer = lambda rows: insert_new(session, rows)  # noqa: E731
    plan = CampaignPlan()
    campaigns = active_campaigns(session, clinic_id)
    _plan_appointments(session, plan, campaigns, now, until, since, appointment_id, writer, progress)
    if appointment_id is None:
        _plan_refills(session, plan, campaigns, now, until, since, writer, progress)
        for _, count in _uncovered(session, now, until, clinic_id):
            plan.held[(NO_STEP, "no active campaign with steps for its appointment type")] += count
    return plan


def _plan_appointments(session: Session, plan: CampaignPlan, campaigns: list[Campaign], now: dt.datetime,
                       until: dt.datetime, since: dt.datetime | None, appointment_id: int | None, writer, progress) -> None:
    """Plan the campaigns' steps about appointments (reminders, recovery) into `plan`."""
    for campaign, purpose in ((c, p) for c in campaigns for p in PURPOSES):
        steps = steps_for(campaign, purpose)
        if not steps:
            continue
        flows = REMINDER_FLOWS if purpose == REMINDER else RECOVERY_FLOWS
        opted_out = set(session.scalars(select(PhoneOptOut.phone).where(PhoneOptOut.clinic_id == campaign.clinic_id)))
        for batch in _batches(session, campaign_appointments(session, campaign, now, until, purpose, appointment_id)):
            plan.appointments += len(batch)
            done = _steps_done(session, [appointment.id for appointment, _ in batch])
            rows = []
            for appointment, patient in batch:
                for step, at, channel, reason in _contacts(campaign, steps, appointment.starts_at, patient, now, until,
                                                           done.get(appointment.id, set()), opted_out):
                    if reason is not None:
                        plan.held[(step.name, reason)] += 1
                        continue
                    if since is not None and at < since:
                        continue
                    day = at.astimezone(ZoneInfo(patient.timezone or campaign.clinic.timezone)).date()
                    plan.planned[(day, channel, step.name)] += 1
                    rows.append(dict(appointment_id=appointment.id, patient_id=patient.id, prescription_id=None,
                                     refill_due_on=None, step=step.name, flow=flows[channel],
                                     channel=channel, campaign_step_id=step.id, due_at=at, status="planned",
                                     attempts=0, test_call=False, updated_at=now))
            if writer is not None and rows:
                plan.written += writer(rows)
            if progress is not None:
                progress(len(batch))


def campaign_prescriptions(campaign: Campaign, now: dt.datetime, until: dt.datetime):
    """The query for the prescriptions a campaign's refill steps cover: the active ones of the
    clinic's patients whose refill is due so that a step falls due before `until`, and not more
    than a week ago (a day's slack either side for time zones; the steps say exactly)."""
    earliest = min(step.offset_minutes for step in steps_for(campaign, REFILL))
    first_day = (now - REFILL_WINDOW).date() - dt.timedelta(days=1)
    last_day = (until - dt.timedelta(minutes=earliest)).date() + dt.timedelta(days=1)
    return (select(Prescription, Patient).join(Prescription.patient)
            .where(Patient.clinic_id == campaign.clinic_id, Prescription.active.is_(True),
                   Prescription.refill_due_on.is_not(None), Prescription.refill_due_on >= first_day,
                   Prescription.refill_due_on <= last_day))


def refill_campaigns(campaigns: list[Campaign]) -> list[Campaign]:
    """The campaigns with refill steps: a clinic's campaign for every appointment type (its one
    active one) carries its refill prompts."""
    return [c for c in campaigns if c.appointment_type is None and steps_for(c, REFILL)]


def _plan_refills(session: Session, plan: CampaignPlan, campaigns: list[Campaign], now: dt.datetime,
                  until: dt.datetime, since: dt.datetime | None, writer, progress) -> None:
    """Plan the campaigns' refill prompts into `plan`: one touch per prescription, due day and step."""
    for campaign in refill_campaigns(campaigns):
        steps = steps_for(campaign, REFILL)
        opted_out = set(session.scalars(select(PhoneOptOut.phone).where(PhoneOptOut.clinic_id == campaign.clinic_id)))
        for batch in _batches(session, campaign_prescriptions(campaign, now, until), Prescription.id):
            plan.appointments += len(batch)
            done = _refill_steps_done(session, [prescription.id for prescription, _ in batch])
            rows = []
            for prescription, patient in batch:
                zone = ZoneInfo(patient.timezone or campaign.clinic.timezone)
                due_day = dt.datetime.combine(prescription.refill_due_on, dt.time(0), zone).astimezone(dt.timezone.utc)
                for step, at, channel, reason in _contacts(
                        campaign, steps, due_day, patient, now, until,
                        done.get((prescription.id, prescription.refill_due_on), set()), opted_out):
                    if reason is None and prescription.refills_left == 0:
                        reason = "no refills left (the prescriber must renew it)"
                    if reason is not None:
                        plan.held[(step.name, reason)] += 1
                        continue
                    if since is not None and at < since:
                        continue
                    plan.planned[(at.astimezone(zone).date(), channel, step.name)] += 1
                    rows.append(dict(appointment_id=None, patient_id=patient.id, prescription_id=prescription.id,
                                     refill_due_on=prescription.refill_due_on, step=step.name,
                                     flow=REFILL_FLOWS[channel], channel=channel, campaign_step_id=step.id, due_at=at,
                                     status="planned", attempts=0, test_call=False, updated_at=now))
            if writer is not None and rows:
                plan.written += writer(rows)
            if progress is not None:
                progress(len(batch))


def _refill_steps_done(session: Session, prescription_ids: list[int]) -> dict[tuple[int, dt.date], set[str]]:
    """The steps each prescription's refill (by due day) has a touch for already."""
    done: dict[tuple[int, dt.date], set[str]] = {}
    for prescription_id, due_on, step in session.execute(
            select(Touch.prescription_id, Touch.refill_due_on, Touch.step)
            .where(Touch.prescription_id.in_(prescription_ids))):
        done.setdefault((prescription_id, due_on), set()).add(step)
    return done


# Held-back contacts that belong to no step.
NO_STEP = "-"


def _uncovered(session: Session, now: dt.datetime, until: dt.datetime, clinic_id: int | None):
    """(clinic, booked appointments starting before `until` that no active campaign with steps
    covers) for each clinic with campaigns: a campaign only for some types, or one without steps
    yet, would otherwise leave patients without a word and nobody told."""
    has_steps = _has_steps(REMINDER)
    clinics = select(Campaign.clinic_id).distinct()
    if clinic_id is not None:
        clinics = clinics.where(Campaign.clinic_id == clinic_id)
    for (clinic,) in session.execute(clinics).all():
        typed_with_steps = select(Campaign.appointment_type).where(
            Campaign.clinic_id == clinic, Campaign.active, Campaign.appointment_type.is_not(None), has_steps)
        general = session.scalar(select(Campaign.id).where(
            Campaign.clinic_id == clinic, Campaign.active, Campaign.appointment_type.is_(None), has_steps).limit(1))
        if general is not None:
            continue  # every type is reminded: by its own campaign, else by the general one
        left_out = or_(Appointment.appointment_type.is_(None), Appointment.appointment_type.not_in(typed_with_steps))
        count = session.scalar(select(func.count()).select_from(Appointment).join(Appointment.patient).where(
            Patient.clinic_id == clinic, Appointment.status == "booked", Appointment.starts_at > now,
            Appointment.starts_at <= until, left_out))
        if count:
            yield clinic, count


def _batches(session: Session, query, order=Appointment.id) -> Iterator[list]:
    """The query's rows in batches of BATCH, read as they are needed (memory does not grow with
    the number of appointments)."""
    result = session.execute(query.order_by(order).execution_options(yield_per=BATCH))
    for partition in result.partitions():
        yield list(partition)


def _steps_done(session: Session, appointment_ids: list[int]) -> dict[int, set[str]]:
    """The steps each appointment has a touch for already."""
    done: dict[int, set[str]] = {}
    for appointment_id, step in session.execute(
            select(Touch.appointment_id, Touch.step).where(Touch.appointment_id.in_(appointment_ids))):
        done.setdefault(appointment_id, set()).add(step)
    return done


def _contacts(campaign: Campaign, steps: list[CampaignStep], starts: dt.datetime, patient: Patient,
              now: dt.datetime, until: dt.datetime, done: set[str], opted_out: set[str]):
    """(step, when, channel, reason held back or None) for each of these steps of the campaign
    that the subject (a visit starting at `starts`, or a refill due on the day that starts then)
    still needs and that fall due before `until`."""
    zone = ZoneInfo(patient.timezone or campaign.clinic.timezone)
    steps = [step for step in steps if step.audience in ("all", patient.preferred_channel)]
    candidates, going = [], []  # going: offsets of the steps that went or will go now
    for step in steps:
        if step.name in done:
            going.append(step.offset_minutes)
            continue
        due = step_due(starts, step.offset_minutes, zone)
        if due > until:
            continue
        channel = patient.preferred_channel if step.channel == "preferred" else step.channel
        at, reason = _when(campaign, patient, channel, due, starts, now, opted_out, step.purpose)
        candidates.append((step, due, at, channel, reason))
        if reason is None and due <= now:
            going.append(step.offset_minutes)
    for step, due, at, channel, reason in candidates:
        # Booked late, or planned late: a later step went already or goes now too, and one
        # contact says it all (a later step held back supersedes nothing).
        if reason is None and due < now and any(offset > step.offset_minutes for offset in going):
            reason = "superseded by a later step"
        yield step, at, channel, reason


def _when(campaign: Campaign, patient: Patient, channel: str, due: dt.datetime, starts: dt.datetime,
          now: dt.datetime, opted_out: set[str], purpose: str = REMINDER) -> tuple[dt.datetime, str | None]:
    """When a contact due at `due` may go (a reminder before the visit, a recovery within the
    week after it), or why it may not."""
    reason = _held_back(campaign, patient, channel, opted_out)
    if reason is not None:
        return due, reason
    try:
        at = contact_time(patient, max(due, now))
    except ValueError:
        return due, "the patient may not be contacted on any day"
    if purpose == REMINDER and at >= starts:
        return at, "no contact window before the appointment"
    if purpose == NO_SHOW and at >= starts + RECOVERY_WINDOW:
        return at, "no contact window within a week of the missed visit"
    if purpose == REFILL and at >= starts + REFILL_WINDOW:
        return at, "no contact window within a week of the refill's due day"
    return at, None


def step_due(starts: dt.datetime, offset_minutes: int, zone: ZoneInfo) -> dt.datetime:
    """When a step falls due, counted on the patient's wall clock: 72 h before a 14:00 visit is
    14:00 three days before, even when the clocks change in between."""
    return (starts.astimezone(zone) + dt.timedelta(minutes=offset_minutes)).astimezone(dt.timezone.utc)


def _held_back(campaign: Campaign, patient: Patient, channel: str, opted_out: set[str]) -> str | None:
    """Why the patient may not get this contact at all, or None."""
    if patient.opted_out_at is not None or patient.phone in opted_out:
        return "opted out"
    if campaign.require_consent and patient.consent_at is None:
        return "no consent recorded"
    if channel not in REMINDER_FLOWS:
        return f"channel {channel} is neither voice nor sms"
    if channel == "sms":
        return textable(patient.phone)
    return None


def batch_writer(sessions: sessionmaker[Session]) -> Callable[[list[dict]], int]:
    """A writer for plan_campaigns that commits each batch in a transaction of its own."""
    def write(rows: list[dict]) -> int:
        with sessions.begin() as session:
            return insert_new(session, rows)
    return write


def insert_new(session: Session, rows: list[dict]) -> int:
    """Insert the touches that do not exist yet; returns how many were created. A plain
    executemany (no RETURNING: psycopg sends it pipelined instead of parsing one statement with
    thousands of placeholders), so the count is the batch's touches after less before."""
    connection = session.connection()
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # A batch is about appointments or about prescriptions; each kind has its own unique key.
    if rows[0]["prescription_id"] is not None:
        subject, key = Touch.prescription_id, ["prescription_id", "refill_due_on", "step"]
        ids = {row["prescription_id"] for row in rows}
    else:
        subject, key = Touch.appointment_id, ["appointment_id", "step"]
        ids = {row["appointment_id"] for row in rows}
    count = select(func.count()).select_from(Touch).where(subject.in_(ids))
    before = connection.scalar(count)
    connection.execute(insert(Touch).on_conflict_do_nothing(index_elements=key), rows)
    return connection.scalar(count) - before


def replan(session: Session, appointment: Appointment, now: dt.datetime) -> int:
    """Move the appointment's waiting campaign touches to its new time (a touch with no contact
    window before the new time is skipped); returns how many changed."""
    changed = 0
    touches = session.scalars(select(Touch).join(Touch.campaign_step).where(
        Touch.appointment_id == appointment.id, Touch.status == "planned"))
    for touch in touches:
        if touch.step != touch.campaign_step.name or touch.campaign_step.purpose != REMINDER:
            continue  # a fallback text is owed now, and a missed visit's follow-up stays as it is
        patient = appointment.patient
        due = step_due(appointment.starts_at, touch.campaign_step.offset_minutes,
                       ZoneInfo(patient.timezone or patient.clinic.timezone))
        at = contact_time(patient, max(due, now))
        if at >= appointment.starts_at:
            touch.status, touch.last_error = "skipped", "no contact window before the moved appointment"
        else:
            touch.due_at, touch.last_error = at, None
        changed += 1
    return changed


def describe(plan: CampaignPlan) -> Iterator[tuple[str, ...]]:
    """Rows for a table of the plan: day, channel, step, contacts."""
    for (day, channel, step), count in sorted(plan.planned.items()):
        yield day.isoformat(), channel, step, str(count)


def pending_steps(session: Session, clinic_id: int | None = None) -> list[tuple[str, str, str, int]]:
    """(campaign, step, touch status, count) for every campaign touch, for `ivr campaign status`."""
    query = (select(Campaign.name, Touch.step, Touch.status, func.count())
             .join(Touch.campaign_step).join(CampaignStep.campaign)
             .group_by(Campaign.name, Touch.step, Touch.status).order_by(Campaign.name, Touch.step, Touch.status))
    if clinic_id is not None:
        query = query.where(Campaign.clinic_id == clinic_id)
    return [tuple(row) for row in session.execute(query)]
