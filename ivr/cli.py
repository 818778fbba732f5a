"""The `ivr` command (also `flask --app ivr ...`): database, demo data, worker, reminders."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from ivr.errors import ConfigError
from ivr.services import current_services

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str):
    """Alembic's configuration for our migrations against database_url."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@click.group("db")
def db_group() -> None:
    """Create, migrate and inspect the database."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create the database or migrate it to the latest schema."""
    from alembic import command

    settings = current_services().settings
    command.upgrade(alembic_config(settings.database_url), revision)
    click.echo(f"database is at revision {revision}: {_safe_url(settings.database_url)}")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the database's schema revision."""
    from alembic import command

    command.current(alembic_config(current_services().settings.database_url))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Load a demo clinic with patients and upcoming appointments (once)."""
    from ivr import demo

    services = current_services()
    with services.sessions.begin() as session:
        clinic, created = demo.seed(session)
        click.echo(("created" if created else "already present:") +
                   f" demo clinic {clinic.name!r} (id {clinic.id}) with "
                   f"{len(clinic.patients)} patients")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--no-fork", is_flag=True, help="Run jobs in this process (no work horse).")
@with_appcontext
def worker(burst: bool, no_fork: bool) -> None:
    """Run an RQ worker (with its scheduler) for outbound calls; it also reconciles the queue
    with the database every IVR_RECONCILE_SECONDS."""
    from flask import current_app

    from outbound.queueing import outbound_queue
    from outbound.worker import AppSimpleWorker, AppWorker

    services = current_services()
    queue = outbound_queue(services.redis)
    worker_class = AppSimpleWorker if no_fork else AppWorker
    period = services.settings.reconcile_seconds
    w = worker_class([queue], connection=services.redis, app=current_app._get_current_object(),
                     reconcile_every=period)
    click.echo(f"worker listening on queue {queue.name!r}" + (" (burst)" if burst else "")
               + f"; reconciling with the database every {period} s")
    w.work(burst=burst, with_scheduler=True)


@click.group("reminders")
def reminders_group() -> None:
    """Plan and send appointment reminder calls."""


@reminders_group.command("schedule")
@click.option("--within-hours", default=72, show_default=True, type=click.IntRange(1, 24 * 30),
              help="Plan the reminders due within this many hours.")
@with_appcontext
def reminders_schedule(within_hours: int) -> None:
    """Plan each clinic's reminders due soon (its campaigns' steps, or one reminder per booked
    appointment) and queue them, never twice (the same as `ivr campaign run`)."""
    from outbound.cli import schedule

    click.echo(schedule(within_hours))


@reminders_group.command("reconcile")
@with_appcontext
def reminders_reconcile() -> None:
    """Queue every planned call that has no live job and settle calls whose final status never
    came (what the worker does every IVR_RECONCILE_SECONDS)."""
    from ivr.models import utcnow
    from outbound.reconciler import reconcile_all

    click.echo(reconcile_all(current_services(), utcnow()).summary())


@reminders_group.command("outcomes")
@click.option("--wait", default=0, show_default=True, type=click.IntRange(0, 3600),
              help="Wait up to this many seconds for calls in progress to end.")
@with_appcontext
def reminders_outcomes(wait: int) -> None:
    """Show each outreach contact: its subject (an appointment, or rx-ID: a prescription's refill),
    call status, outcome, and the subject's status now."""
    import time

    from ivr.models import Appointment, Call, Task, Touch

    services = current_services()
    deadline = time.monotonic() + wait
    while True:
        with services.sessions() as session:
            rows = session.execute(
                select(Touch, Call).outerjoin(Call, Call.touch_id == Touch.id)
                .order_by(Touch.appointment_id.is_(None), Touch.appointment_id, Touch.prescription_id, Touch.id)).all()
            busy = [t for t, c in rows if t.status in ("planned", "dialing", "placed")]
            if not busy or time.monotonic() >= deadline:
                asked = set(session.scalars(select(Task.prescription_id).where(
                    Task.kind == "refill_request", Task.status == "open", Task.prescription_id.is_not(None))))
                table = [(str(t.appointment_id) if t.appointment_id is not None else f"rx-{t.prescription_id}",
                          t.step, t.status, *_contact(session, t, c),
                          session.get(Appointment, t.appointment_id).status if t.appointment_id is not None
                          else "refill_requested" if t.prescription_id in asked else "not_requested")
                         for t, c in rows]
                break
        time.sleep(0.5)
    header = ("subject", "contact", "touch", "call", "outcome", "subject status")
    _echo_table([header, *table])
    if busy:
        click.echo(f"{len(busy)} call(s) still in progress")
    _echo_not_final(services)


def _contact(session, touch, call) -> tuple[str, str]:
    """How a touch's contact went: its call's status and outcome, or for a text its reminder's
    status and how the conversation ended."""
    from ivr.models import Conversation, Message

    if call is not None:
        return call.status, call.outcome or "-"
    if touch.channel != "sms":
        return "-", "-"
    text = session.scalars(select(Message).where(Message.touch_id == touch.id,
                                                 Message.kind.in_(("reminder", "no_show", "refill")))
                           .order_by(Message.id)).first()
    if text is None:
        return "-", "-"
    conversation = session.get(Conversation, text.conversation_id) if text.conversation_id else None
    ended = "answered" if conversation is not None and conversation.closed_at else "waiting"
    return f"text {text.status}", (text.reason or ended) if text.status in ("refused", "failed") else ended


def _echo_table(rows: list[tuple[str, ...]], indent: str = "") -> None:
    """Rows as columns padded to their widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _echo_not_final(services) -> None:
    """Touches and calls that should have ended by now, with ids and ages (no PHI)."""
    from ivr.models import utcnow
    from outbound.reconciler import not_final

    after = dt.timedelta(seconds=services.settings.stale_call_seconds)
    with services.sessions() as session:
        stale = not_final(session, utcnow(), after)
    if stale:
        click.echo(f"not final after {_age(after)}:")
        _echo_table([(f"{s.kind} {s.id}", s.status, _age(s.age), s.sid or "") for s in stale], indent="  ")


def _age(span: dt.timedelta) -> str:
    """A duration for people: '45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    seconds = int(span.total_seconds())
    days, hours, minutes = seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


@click.group("clinics")
def clinics_group() -> None:
    """See and configure clinics."""


@clinics_group.command("list")
@with_appcontext
def clinics_list() -> None:
    """Each clinic with its numbers, language, whether it takes spoken answers, its senior mode
    default, and whether callers wait in a queue (and for how long at most)."""
    from ivr.voice_engines import voice_answers_shown
    from ivr.models import Clinic

    services = current_services()
    with services.sessions() as session:
        for clinic in session.scalars(select(Clinic).order_by(Clinic.id)):
            voice = voice_answers_shown(clinic.voice_answers, clinic.language, services.settings.speech_models)
            click.echo(f"{clinic.id}  {clinic.name}  phone {clinic.phone}  staff {clinic.staff_phone or '-'}  "
                       f"language {clinic.language}  voice answers {voice}  "
                       f"senior mode {'on' if clinic.senior_mode else 'off'}  "
                       f"queue {_queue_shown(clinic)}")


def _queue_shown(clinic) -> str:
    """A clinic's caller queue in a few words: 'on (300 s, lines in order)' or 'off'."""
    if not clinic.queue_callers:
        return "off"
    return f"on ({clinic.queue_max_wait} s, lines {'together' if clinic.ring_together else 'in order'})"


@clinics_group.command("voice-answers")
@click.argument("clinic_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off"]))
@with_appcontext
def clinics_voice_answers(clinic_id: int, setting: str) -> None:
    """Let callers answer questions by voice as well as by key (on), or by key only (off)."""
    _set_clinic_flag(clinic_id, "voice_answers", setting == "on")
    click.echo(f"clinic {clinic_id}: voice answers {setting}")


@clinics_group.command("text-privacy")
@click.argument("clinic_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off"]))
@with_appcontext
def clinics_text_privacy(clinic_id: int, setting: str) -> None:
    """Reminder texts name only the clinic, and send the details when the patient replies 1
    (on); or say the date, time and place at once (off, the default)."""
    _set_clinic_flag(clinic_id, "sms_private", setting == "on")
    click.echo(f"clinic {clinic_id}: private reminder texts {setting}")


@clinics_group.command("retry-wrong-person")
@click.argument("clinic_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off"]))
@with_appcontext
def clinics_retry_wrong_person(clinic_id: int, setting: str) -> None:
    """When someone else answers a reminder call, ring once more the next day (on), or leave a
    task for staff (off, the default)."""
    _set_clinic_flag(clinic_id, "retry_wrong_person", setting == "on")
    click.echo(f"clinic {clinic_id}: retry when someone else answers {setting}")


@clinics_group.command("senior-mode")
@click.argument("clinic_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off"]))
@with_appcontext
def clinics_senior_mode(clinic_id: int, setting: str) -> None:
    """The default for patients without a setting of their own (and callers not yet
    identified): prompts 20% slower, longer waits for keys and words, and each question said
    once more before it counts as missed (on); or not (off, the default)."""
    _set_clinic_flag(clinic_id, "senior_mode", setting == "on")
    click.echo(f"clinic {clinic_id}: senior mode by default {setting}")


@clinics_group.command("contact-cap")
@click.argument("clinic_id", type=int)
@click.argument("cap", type=click.IntRange(1, 20))
@with_appcontext
def clinics_contact_cap(clinic_id: int, cap: int) -> None:
    """The most calls and texts the clinic starts to one patient in a day (their own day), across
    campaigns and channels; a contact over it waits for the next day."""
    with current_services().sessions.begin() as session:
        _clinic(session, clinic_id).daily_contact_cap = cap
    click.echo(f"clinic {clinic_id}: at most {cap} contact(s) per patient a day")


@clinics_group.command("calls-at-once")
@click.argument("clinic_id", type=int)
@click.argument("most", type=click.IntRange(1, 500))
@with_appcontext
def clinics_calls_at_once(clinic_id: int, most: int) -> None:
    """The most outbound calls of the clinic ringing or talking at once; more wait their turn."""
    with current_services().sessions.begin() as session:
        _clinic(session, clinic_id).max_calls_in_progress = most
    click.echo(f"clinic {clinic_id}: at most {most} outbound call(s) at once")


@clinics_group.command("queue")
@click.argument("clinic_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off"]))
@click.option("--max-wait", type=click.IntRange(30, 3600), metavar="SECONDS",
              help="How long a caller waits before being offered a call back or a message (default 300).")
@click.option("--together/--in-order", default=None,
              help="Ring every staff line at once for the first caller (the first to press 1 takes them), "
                   "or one after another (the default).")
@with_appcontext
def clinics_queue(clinic_id: int, setting: str, max_wait: int | None, together: bool | None) -> None:
    """A caller who asks for a person waits in a queue, told their place and the expected wait and
    free to press 1 for a call back, while staff lines are rung for the first caller in line (on,
    the default); or their own call rings the staff lines in turn (off)."""
    with current_services().sessions.begin() as session:
        clinic = _clinic(session, clinic_id)
        clinic.queue_callers = setting == "on"
        if max_wait is not None:
            clinic.queue_max_wait = max_wait
        if together is not None:
            clinic.ring_together = together
        longest, rings = clinic.queue_max_wait, "together" if clinic.ring_together else "in order"
    click.echo(f"clinic {clinic_id}: caller queue {setting}"
               + (f", longest wait {longest} s, staff lines rung {rings}" if setting == "on" else ""))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hours(spec: str) -> list[tuple[int, dt.time, dt.time]]:
    """'mon-fri 08:00-17:00' or 'sat 09:00-12:00' as (weekday, opens, closes) rows."""
    import re

    match = re.fullmatch(r"\s*([a-z]{3})(?:-([a-z]{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*", spec.lower())
    if not match or match[1] not in WEEKDAYS or (match[2] and match[2] not in WEEKDAYS):
        raise click.BadParameter(f"{spec!r}: expected like 'mon-fri 08:00-17:00' or 'sat 09:00-12:00'",
                                 param_hint="--set")
    first = WEEKDAYS.index(match[1])
    last = WEEKDAYS.index(match[2]) if match[2] else first
    try:
        opens = dt.time(int(match[3]), int(match[4]))
        # 24:00 is the end of the day (a line open around the clock: "mon-sun 00:00-24:00").
        closes = dt.time.max if (match[5], match[6]) == ("24", "00") else dt.time(int(match[5]), int(match[6]))
    except ValueError:
        raise click.BadParameter(f"{spec!r}: not a time of day", param_hint="--set") from None
    if not opens < closes or last < first:
        raise click.BadParameter(f"{spec!r}: opening must come before closing, and days in week order",
                                 param_hint="--set")
    return [(day, opens, closes) for day in range(first, last + 1)]


@clinics_group.command("hours")
@click.argument("clinic_id", type=int)
@click.option("--set", "specs", multiple=True, help="Replace the hours: 'mon-fri 08:00-17:00' (repeatable).")
@click.option("--always-open", is_flag=True, help="Remove the hours: the line is always staffed.")
@with_appcontext
def clinics_hours(clinic_id: int, specs: tuple[str, ...], always_open: bool) -> None:
    """When the clinic's line is staffed, on the clinic's own clock; outside those hours, and on
    public holidays and closures, callers may leave a message. With no option, show them."""
    from sqlalchemy import delete

    from ivr.models import OpeningHours

    rows = [row for spec in specs for row in _parse_hours(spec)]
    with current_services().sessions.begin() as session:
        clinic = _clinic(session, clinic_id)
        if specs or always_open:
            session.execute(delete(OpeningHours).where(OpeningHours.clinic_id == clinic_id))
            seen = set()
            for weekday, opens, closes in rows:
                if (weekday, opens) in seen:
                    raise click.ClickException(f"{WEEKDAYS[weekday]} {opens:%H:%M} is given twice")
                seen.add((weekday, opens))
                session.add(OpeningHours(clinic_id=clinic_id, weekday=weekday, opens=opens, closes=closes))
            session.flush()
        spans = session.execute(select(OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes)
                                .where(OpeningHours.clinic_id == clinic_id)
                                .order_by(OpeningHours.weekday, OpeningHours.opens)).all()
        zone = clinic.timezone
    if not spans:
        click.echo(f"clinic {clinic_id}: always open (no hours set)")
        return
    shown = ", ".join(f"{WEEKDAYS[d]} {o:%H:%M}-{'24:00' if c == dt.time.max else f'{c:%H:%M}'}"
                      for d, o, c in spans)
    click.echo(f"clinic {clinic_id} ({zone}): {shown}")


@clinics_group.command("closed")
@click.argument("clinic_id", type=int)
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--remove", is_flag=True, help="Open on that day after all.")
@with_appcontext
def clinics_closed(clinic_id: int, day: dt.datetime, remove: bool) -> None:
    """A day the clinic is closed besides public holidays (YYYY-MM-DD)."""
    from sqlalchemy import delete

    from ivr.models import ClinicClosure

    with current_services().sessions.begin() as session:
        _clinic(session, clinic_id)
        session.execute(delete(ClinicClosure).where(ClinicClosure.clinic_id == clinic_id,
                                                    ClinicClosure.day == day.date()))
        if not remove:
            session.add(ClinicClosure(clinic_id=clinic_id, day=day.date()))
    click.echo(f"clinic {clinic_id}: {'open' if remove else 'closed'} on {day:%Y-%m-%d}")


@clinics_group.command("holidays")
@click.argument("clinic_id", type=int)
@click.argument("country")
@click.argument("subdivision", required=False)
@with_appcontext
def clinics_holidays(clinic_id: int, country: str, subdivision: str | None) -> None:
    """Whose public holidays close the clinic: a country (US, CA, ...) and optionally a state or
    province (NY, QC). Without this, the country of the clinic's number."""
    import holidays

    supported = holidays.list_supported_countries()
    country = country.upper()
    if country not in supported:
        raise click.BadParameter(f"{country!r} is not a country the holidays package knows", param_hint="COUNTRY")
    if subdivision is not None:
        subdivision = subdivision.upper()
        if subdivision not in supported[country]:
            raise click.BadParameter(f"{country} has no subdivision {subdivision!r} (it has: "
                                     f"{', '.join(supported[country][:12])}...)", param_hint="SUBDIVISION")
    with current_services().sessions.begin() as session:
        clinic = _clinic(session, clinic_id)
        clinic.holiday_country, clinic.holiday_subdivision = country, subdivision
    click.echo(f"clinic {clinic_id}: closed on the public holidays of {country}"
               + (f"-{subdivision}" if subdivision else ""))


@clinics_group.command("staff-lines")
@click.argument("clinic_id", type=int)
@click.argument("numbers", nargs=-1)
@click.option("--clear", is_flag=True, help="Remove every line besides the staff phone.")
@with_appcontext
def clinics_staff_lines(clinic_id: int, numbers: tuple[str, ...], clear: bool) -> None:
    """Numbers the inbound line tries, in this order, when the staff phone does not take a call
    (E.164, e.g. +12125550198). With none, show them."""
    from sqlalchemy import delete

    from ivr.config import is_e164
    from ivr.models import StaffLine

    bad = [n for n in numbers if not is_e164(n)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a phone number in E.164 form (+12125550198)",
                                 param_hint="NUMBERS")
    with current_services().sessions.begin() as session:
        clinic = _clinic(session, clinic_id)
        if numbers or clear:
            session.execute(delete(StaffLine).where(StaffLine.clinic_id == clinic_id))
            session.flush()
            for position, number in enumerate(numbers, 1):
                session.add(StaffLine(clinic_id=clinic_id, position=position, phone=number))
            session.flush()
        lines = [clinic.staff_phone or "(no staff phone)", *session.scalars(
            select(StaffLine.phone).where(StaffLine.clinic_id == clinic_id).order_by(StaffLine.position))]
    click.echo(f"clinic {clinic_id}: staff lines in order: {', '.join(lines)}")


def _clinic(session, clinic_id: int):
    """The clinic with this id; one that does not exist is a one-line error."""
    from ivr.models import Clinic

    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise click.ClickException(f"no clinic with id {clinic_id}")
    return clinic


def _set_clinic_flag(clinic_id: int, name: str, value: bool) -> None:
    """Set one of a clinic's on/off settings; a clinic that does not exist is a one-line error."""
    with current_services().sessions.begin() as session:
        clinic = _clinic(session, clinic_id)
        setattr(clinic, name, value)


@click.group("appointments")
def appointments_group() -> None:
    """Change appointments by hand (a scheduling system does it through the API)."""


@appointments_group.command("no-show")
@click.argument("appointment_id", type=int)
@with_appcontext
def appointments_no_show(appointment_id: int) -> None:
    """Mark a visit missed: its reminders stop, its campaign's no-show steps are planned (an offer
    to book again, by call or text), and a high-priority patient gets a task for staff at once."""
    from ivr.models import utcnow
    from outbound import planning
    from outbound.appointment_changes import AppointmentChangeRefused, mark_no_show
    from outbound.queueing import outbound_queue, reconcile

    services = current_services()
    try:
        with services.sessions.begin() as session:
            marked = mark_no_show(session, appointment_id, utcnow())
    except AppointmentChangeRefused as exc:
        raise click.ClickException(str(exc)) from None
    with services.sessions() as session:
        reconcile(outbound_queue(services.redis), planning.touches_to_queue(session, appointment_id=appointment_id))
    held = "; ".join(f"{step}: {reason}" for step, reason in marked.held)
    click.echo(f"appointment {appointment_id}: marked no-show; "
               f"{marked.planned} recovery contact(s) planned" + (f" (held back: {held})" if held else "")
               + (f"; task {marked.task_id} for staff (high priority)" if marked.task_id else ""))


@appointments_group.command("move")
@click.argument("appointment_id", type=int)
@click.argument("when", type=click.DateTime(["%Y-%m-%d %H:%M"]))
@with_appcontext
def appointments_move(appointment_id: int, when: dt.datetime) -> None:
    """Move an appointment to WHEN ("2026-12-20 14:30", on its location's clock) and re-plan its
    campaign's waiting contacts for the new time."""
    from ivr.models import utcnow
    from outbound.appointment_changes import AppointmentChangeRefused, NewTimeHasPassed, move

    try:
        with current_services().sessions.begin() as session:
            starts, moved = move(session, appointment_id, when, utcnow())
    except NewTimeHasPassed as exc:
        raise click.BadParameter(str(exc), param_hint="WHEN") from None
    except AppointmentChangeRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"appointment {appointment_id}: now {when:%Y-%m-%d %H:%M} ({starts.tzinfo.key}); "
               f"{moved} waiting contact(s) planned again")


@click.group("tasks")
def tasks_group() -> None:
    """Work people owe patients: call-backs, new times asked for, texts nobody's question matched."""


@tasks_group.command("list")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's tasks.")
@with_appcontext
def tasks_list(clinic_id: int | None) -> None:
    """Open tasks, the oldest due first: id, kind, who, what about, due (in the clinic's zone)."""
    from zoneinfo import ZoneInfo

    from ivr.models import Clinic, Patient
    from ivr.tasks import open_tasks

    with current_services().sessions() as session:
        found = open_tasks(session, clinic_id)
        rows = [("task", "kind", "who", "about", "due")]
        for task in found:
            clinic = session.get(Clinic, task.clinic_id) if task.clinic_id else None
            zone = ZoneInfo(clinic.timezone if clinic else "UTC")
            patient = session.get(Patient, task.patient_id) if task.patient_id else None
            who = f"patient {patient.id} ({patient.phone})" if patient else (task.phone or "-")
            about = (f"appointment {task.appointment_id}" if task.appointment_id
                     else f"prescription {task.prescription_id}" if task.prescription_id
                     else "voicemail (ivr tasks voicemail)" if task.voicemail
                     else f"text {task.message_id}" if task.message_id
                     else f"call {task.call_id}" if task.call_id else "-")
            rows.append((str(task.id), task.kind, who, about,
                         task.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")))
    if not found:
        click.echo("no open tasks")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@tasks_group.command("done")
@click.argument("task_id", type=int)
@click.option("--by", default=None, help="Who did it (default: the login name).")
@click.option("--cancel", is_flag=True, help="Close it as cancelled rather than done.")
@with_appcontext
def tasks_done(task_id: int, by: str | None, cancel: bool) -> None:
    """Close an open task as done (or cancelled)."""
    import getpass

    from ivr.tasks import close_task

    from ivr.inbound import voicemail
    from ivr.models import Task

    who = by or getpass.getuser()
    services = current_services()
    with services.sessions.begin() as session:
        if not close_task(session, task_id, who, "cancelled" if cancel else "done"):
            raise click.ClickException(f"no open task with id {task_id}")
        message = session.scalar(select(Task.voicemail).where(Task.id == task_id))
    # A caller's message is kept only while someone still has to act on it.
    voicemail.forget(services.settings.voicemail_dir, message)
    click.echo(f"task {task_id} {'cancelled' if cancel else 'done'} by {who}")


@tasks_group.command("voicemail")
@click.argument("task_id", type=int)
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Write the message (WAV) to this file.")
@with_appcontext
def tasks_voicemail(task_id: int, out: str) -> None:
    """Save the message a caller left for a task, to listen to it."""
    import os

    from ivr.inbound import voicemail
    from ivr.models import Task

    services = current_services()
    with services.sessions() as session:
        task = session.get(Task, task_id)
        if task is None or not task.voicemail:
            raise click.ClickException(f"task {task_id} has no message")
        message = task.voicemail
    try:
        audio = voicemail.read(services.settings.voicemail_dir, message)
    except voicemail.VoicemailError as exc:
        raise click.ClickException(str(exc)) from None
    try:  # a new file of the user's own: never through a link, never over another file
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{out} exists; choose a new file name") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(audio)
    click.echo(f"task {task_id}: message saved to {out}")


@click.group("patients")
def patients_group() -> None:
    """How each patient is spoken to."""


@patients_group.command("channel")
@click.argument("patient_id", type=int)
@click.argument("channel", type=click.Choice(["voice", "sms"]))
@with_appcontext
def patients_channel(patient_id: int, channel: str) -> None:
    """How a patient prefers to be reminded: a call (voice) or a text (sms)."""
    from ivr.models import Patient

    with current_services().sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise click.ClickException(f"no patient with id {patient_id}")
        patient.preferred_channel = channel
    click.echo(f"patient {patient_id}: reminders by {'text' if channel == 'sms' else 'call'}")


@patients_group.command("contact")
@click.argument("patient_id", type=int)
@click.option("--days-off", help="Weekdays the patient asked not to be contacted on (sat,sun), or 'none'.")
@click.option("--not-before", type=click.DateTime(["%Y-%m-%d"]),
              help="No outreach before this day (YYYY-MM-DD).")
@click.option("--any-day", is_flag=True, help="Clear --not-before.")
@with_appcontext
def patients_contact(patient_id: int, days_off: str | None, not_before: dt.datetime | None, any_day: bool) -> None:
    """When a patient may be contacted: days they asked to be left alone, a first day for outreach;
    with no option, show them. Calls and texts both keep to them."""
    from ivr.models import Patient
    from outbound.hours import WEEKDAYS, parse_days

    with current_services().sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise click.ClickException(f"no patient with id {patient_id}")
        if days_off is not None:
            try:
                days = parse_days("" if days_off.strip().lower() == "none" else days_off)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--days-off") from None
            if len(days) == len(WEEKDAYS):
                raise click.BadParameter("every day off means no contact at all: opt the patient out instead",
                                         param_hint="--days-off")
            patient.no_contact_days = ",".join(WEEKDAYS[d] for d in sorted(days)) or None
        if not_before is not None or any_day:
            patient.contact_not_before = None if any_day else not_before.date()
        click.echo(f"patient {patient_id}: days off {patient.no_contact_days or 'none'}; first day for "
                   f"outreach {patient.contact_not_before.isoformat() if patient.contact_not_before else 'any'}")


@patients_group.command("priority")
@click.argument("patient_id", type=int)
@click.argument("setting", type=click.Choice(["high", "normal"]))
@with_appcontext
def patients_priority(patient_id: int, setting: str) -> None:
    """High priority: a visit the patient misses also opens a task for staff at once."""
    from ivr.models import Patient

    with current_services().sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise click.ClickException(f"no patient with id {patient_id}")
        patient.high_priority = setting == "high"
    click.echo(f"patient {patient_id}: {setting} priority")


@patients_group.command("senior-mode")
@click.argument("patient_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off", "default"]))
@with_appcontext
def patients_senior_mode(patient_id: int, setting: str) -> None:
    """Senior mode for one patient's calls (on, off), or the clinic's default."""
    from ivr.models import Clinic, Patient

    with current_services().sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise click.ClickException(f"no patient with id {patient_id}")
        patient.senior_mode = None if setting == "default" else setting == "on"
        clinic_default = session.get(Clinic, patient.clinic_id).senior_mode
    shown = (f"the clinic's default ({'on' if clinic_default else 'off'})" if setting == "default" else setting)
    click.echo(f"patient {patient_id}: senior mode {shown}")


@patients_group.command("speech")
@click.argument("patient_id", type=int)
@click.option("--rate", help="Words per minute for this patient's prompts (80-400), or 'default'.")
@click.option("--language", help="The language of this patient's calls (a catalogue: en, es, ...).")
@with_appcontext
def patients_speech(patient_id: int, rate: str | None, language: str | None) -> None:
    """Set the speaking rate and language of a patient's calls; with no option, show them.
    (Prompts at a new rate are rendered by the patient's next call's job.)"""
    import prompts
    from ivr.models import Patient

    with current_services().sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise click.ClickException(f"no patient with id {patient_id}")
        if rate is not None:
            if rate == "default":
                patient.speech_rate = None
            elif rate.isdigit() and 80 <= int(rate) <= 400:
                patient.speech_rate = int(rate)
            else:
                raise click.ClickException("--rate must be a whole number of words per minute from "
                                           "80 to 400, or 'default'")
        if language is not None:
            if language not in prompts.available_languages():
                raise click.ClickException(f"no catalogue for {language!r} (there are: "
                                           f"{', '.join(prompts.available_languages())})")
            patient.language = language
        catalogue = prompts.load(patient.language) if patient.language in prompts.available_languages() \
            else prompts.load("en")
        shown = (f"{patient.speech_rate} words per minute" if patient.speech_rate
                 else f"the {catalogue.language} default, {catalogue.tts_rate} words per minute")
        click.echo(f"patient {patient_id}: language {patient.language}, speech rate {shown}")


def _has_seniors(session, clinic, language: str) -> bool:
    """Whether any of a clinic's patients of a language hears prompts at the senior rate (the
    clinic's default, or their own setting, without a rate of their own)."""
    from sqlalchemy import or_

    from ivr.models import Patient

    senior = Patient.senior_mode.is_(True) if not clinic.senior_mode else or_(
        Patient.senior_mode.is_(None), Patient.senior_mode.is_(True))
    return session.scalar(select(Patient.id).where(
        Patient.clinic_id == clinic.id, Patient.language == language, Patient.speech_rate.is_(None), senior)
        .limit(1)) is not None


@click.command("render")
@click.option("--clinic", "clinic_ids", type=int, multiple=True, help="Only this clinic (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only this language (repeatable).")
@click.option("--rate", "rates", type=click.IntRange(80, 400), multiple=True,
              help="Also at this many words per minute (repeatable).")
@with_appcontext
def prompts_render(clinic_ids: tuple[int, ...], languages: tuple[str, ...], rates: tuple[int, ...]) -> None:
    """Render every prompt that names no patient, for each clinic and language, into the audio
    cache: at each language's default rate, every rate a patient has, and each --rate. Prompts
    already rendered are skipped; personal ones are rendered by each call's job."""
    import prompts
    from ivr import prompt_audio
    from ivr.calls import SENIOR_RATE, clinic_values
    from ivr.models import Clinic, Patient

    services = current_services()
    unknown = sorted(set(languages) - set(prompts.available_languages()))
    if unknown:
        raise click.ClickException(f"no catalogue for: {', '.join(unknown)} "
                                   f"(there are: {', '.join(prompts.available_languages())})")
    work = []  # (catalogue, values, voice, keys)
    with services.sessions() as session:
        query = select(Clinic).order_by(Clinic.id)
        if clinic_ids:
            query = query.where(Clinic.id.in_(clinic_ids))
        clinics = session.scalars(query).all()
        missing = sorted(set(clinic_ids) - {c.id for c in clinics})
        if missing:
            raise click.ClickException(f"no clinic with id {', '.join(map(str, missing))}")
        for language in languages or prompts.available_languages():
            catalogue = prompts.load(language)
            for clinic in clinics or [None]:
                patient_rates = set() if clinic is None else set(session.scalars(
                    select(Patient.speech_rate).distinct().where(
                        Patient.clinic_id == clinic.id, Patient.language == language,
                        Patient.speech_rate.is_not(None))))
                if clinic is not None and _has_seniors(session, clinic, language):
                    patient_rates.add(round(catalogue.tts_rate * SENIOR_RATE))
                values = {} if clinic is None else {
                    name: make() for name, make in clinic_values(clinic.name, clinic.phone).items()}
                keys = [k for k in prompt_audio.shared_prompt_keys(catalogue)
                        if catalogue.placeholders(k) <= values.keys()]
                for rate in sorted({catalogue.tts_rate, *patient_rates, *rates}):
                    work.append((catalogue, values, prompt_audio.voice_for(catalogue, rate), keys))
    total = prompt_audio.RenderReport()
    with click.progressbar(length=sum(len(w[3]) for w in work), label="rendering prompts") as bar:
        for catalogue, values, voice, keys in work:
            total.merge(prompt_audio.render_prompts(services.synthesizer, services.prompt_audio,
                                                    catalogue, values, voice, keys,
                                                    progress=lambda _key: bar.update(1)))
    services.synthesizer.close()
    click.echo(f"{total.made} rendered ({total.audio_seconds:.0f} s of audio in "
               f"{total.render_seconds:.1f} s), {total.cached} already cached, {total.failed} failed; "
               f"in {services.settings.prompt_audio_dir}")
    if total.failed:
        raise click.ClickException(f"{total.failed} prompt(s) could not be rendered (see the log); "
                                   "calls say those with the carrier's voice")


def _sandbox_group():
    from ivr.sandbox.cli import sandbox_group

    return sandbox_group


def _prompts_group():
    from prompts.cli import prompts_group

    prompts_group.add_command(prompts_render)
    return prompts_group


def _speech_group():
    from speech.cli import make_speech_group

    return make_speech_group(_speech_models)


@with_appcontext
def _speech_models():
    """Where the app's settings say speech models are (with_appcontext builds the app if need be)."""
    return current_services().settings.speech_models


def _campaign_group():
    from outbound.cli import campaign_group

    return campaign_group


def _import_group():
    from ivr.imports.cli import import_group

    return import_group


def _webhooks_group():
    from ivr.events.cli import webhooks_group

    return webhooks_group


def _tokens_group():
    from ivr.api.cli import tokens_group

    return tokens_group


def _prescriptions_group():
    from ivr.prescriptions import prescriptions_group

    return prescriptions_group


COMMANDS = (db_group, seed_demo, worker, reminders_group, _campaign_group(), appointments_group, clinics_group, tasks_group,
            patients_group, _prescriptions_group(), _prompts_group(), _sandbox_group(), _speech_group(),
            _tokens_group(), _webhooks_group(), _import_group())


def register(app: Flask) -> None:
    """Make the commands reachable as `flask --app ivr ...` too."""
    for command in COMMANDS:
        app.cli.add_command(command)


class IvrGroup(FlaskGroup):
    """FlaskGroup that lists its commands without building the app (so --help needs no config)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(click.Group.list_commands(self, ctx))

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def _create_app() -> Flask:
    from ivr import create_app

    return create_app()


main = IvrGroup(name="ivr", create_app=_create_app, help=__doc__.splitlines()[0])
for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
