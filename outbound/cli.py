"""`ivr campaign ...`: a clinic's reminder cadences, what they would send, and sending it."""

from __future__ import annotations

import datetime as dt
import re
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ivr.db import read_only
from ivr.models import AUDIENCES, CHANNEL_RULES, RETRY_OUTCOMES, Campaign, CampaignStep, Clinic
from ivr.services import current_services
from outbound.planning import REFILL_LEAD, REFILL_WINDOW

_SPAN = re.compile(r"^([+-]?)(\d+)([mhd])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}
# Appointments to read before a run shows a progress bar.
LONG_RUN = 5000


def parse_span(text: str) -> int:
    """Minutes from '-72h', '90m', '+2d'; ValueError says what is expected."""
    match = _SPAN.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time span: write it as -72h, -90m or -2d")
    sign, amount, unit = match.groups()
    return (-1 if sign == "-" else 1) * int(amount) * _UNIT_MINUTES[unit]


def show_span(minutes: int) -> str:
    """-4320 -> '-72h'; the largest whole unit."""
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0 and abs(minutes) >= size and not (unit == "d" and abs(minutes) < 2880):
            return f"{minutes // size:+d}{unit}"
    return f"{minutes:+d}m"


class SpanType(click.ParamType):
    """A time span option (-72h); a bad one is a one-line usage error."""

    name = "span"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_span(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _outcomes(text: str) -> str:
    """'busy,no-answer' checked against the call results a step can retry."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(RETRY_OUTCOMES))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: use any of {', '.join(RETRY_OUTCOMES)}, or 'none'")
    return ",".join(dict.fromkeys(chosen))


@click.group("campaign")
def campaign_group() -> None:
    """Reminder cadences: steps relative to each appointment, by channel, retried, never twice."""


# Longest a step may be from its appointment, and a retry from the call before (a typo such as
# -1000000d would otherwise be stored and break every later run's date arithmetic).
LONGEST_OFFSET = 90 * 1440
LONGEST_RETRY = 7 * 1440


@campaign_group.command("add")
@click.argument("clinic_id", type=int)
@click.argument("name")
@click.option("--type", "appointment_type", help="Only appointments of this type (default: every type "
                                                 "no other active campaign of the clinic claims).")
@click.option("--require-consent", is_flag=True, help="Contact only patients with a recorded consent.")
@with_appcontext
def campaign_add(clinic_id: int, name: str, appointment_type: str | None, require_consent: bool) -> None:
    """Create an active campaign for a clinic (add its steps with `ivr campaign step`)."""
    from call_flows.text import clean_name

    name = clean_name(name)
    if not name or len(name) > 100:
        raise click.BadParameter("a campaign name is 1 to 100 characters", param_hint="NAME")
    appointment_type = clean_name(appointment_type or "") or None
    if appointment_type is not None and len(appointment_type) > 40:
        raise click.BadParameter("an appointment type is at most 40 characters", param_hint="--type")
    with current_services().sessions.begin() as session:
        if session.get(Clinic, clinic_id) is None:
            raise click.ClickException(f"no clinic with id {clinic_id}")
        if session.scalar(select(Campaign.id).where(Campaign.clinic_id == clinic_id, Campaign.name == name)):
            raise click.ClickException(f"clinic {clinic_id} has a campaign named {name!r} already")
        _refuse_second_active(session, clinic_id, appointment_type, None)
        campaign = Campaign(clinic_id=clinic_id, name=name, appointment_type=appointment_type,
                            require_consent=require_consent)
        session.add(campaign)
        session.flush()
        click.echo(f"campaign {campaign.id} {campaign.name!r} for clinic {clinic_id} "
                   f"({_kind(campaign)}), active; add steps with `ivr campaign step {campaign.id} NAME --at -72h`")


def _refuse_second_active(session, clinic_id: int, appointment_type: str | None, except_id: int | None) -> None:
    """One active campaign per clinic and appointment type: two would contact a patient twice."""
    other = session.scalar(select(Campaign).where(
        Campaign.clinic_id == clinic_id, Campaign.active, Campaign.id != (except_id or 0),
        Campaign.appointment_type.is_(None) if not appointment_type
        else Campaign.appointment_type == appointment_type))
    if other is not None:
        raise click.ClickException(f"campaign {other.id} {other.name!r} is active for {_kind(other)} already; "
                                   f"pause it first (`ivr campaign active {other.id} off`)")


def _kind(campaign: Campaign) -> str:
    return f"{campaign.appointment_type!r} appointments" if campaign.appointment_type else "every appointment type"


@campaign_group.command("step")
@click.argument("campaign_id", type=int)
@click.argument("name")
@click.option("--at", "offset", type=SpanType(), required=True,
              help="When, from the appointment's start: -72h, -90m, -2d (before it); +2h after it "
                   "with --no-show.")
@click.option("--no-show", "no_show", is_flag=True,
              help="A recovery step: after a visit marked missed, offer a new appointment.")
@click.option("--refill", is_flag=True,
              help="A refill prompt: --at counts from the start of a prescription's refill due day (-3d, 0m, +2d); "
                   "only on a campaign for every appointment type.")
@click.option("--channel", type=click.Choice(CHANNEL_RULES), default="preferred", show_default=True,
              help="How: a call, a text, or the patient's preferred channel.")
@click.option("--for", "audience", type=click.Choice(AUDIENCES), default="all", show_default=True,
              help="Whom: everyone, or only patients who prefer voice / texts.")
@click.option("--fallback-sms/--no-fallback-sms", default=False, show_default=True,
              help="Text the patient when the call never reaches them (after its retries).")
@click.option("--retry-on", default="busy,no-answer", show_default=True,
              help=f"Call results to try again: any of {', '.join(RETRY_OUTCOMES)}, comma-separated, or 'none'.")
@click.option("--attempts", type=click.IntRange(1, 10), default=3, show_default=True,
              help="Calls at most, the first included.")
@click.option("--retry-after", type=SpanType(), default="60m", show_default=True,
              help="Wait before a retry (at least 5m); calling hours still apply.")
@with_appcontext
def campaign_step(campaign_id: int, name: str, offset: int, no_show: bool, refill: bool, channel: str, audience: str,
                  fallback_sms: bool, retry_on: str, attempts: int, retry_after: int) -> None:
    """Add a step to a campaign, or change the step of that name."""
    retry_on = "" if retry_on.strip().lower() == "none" else _outcomes(retry_on)
    if no_show and refill:
        raise click.UsageError("a step is either --no-show or --refill")
    if refill and not -REFILL_LEAD <= dt.timedelta(minutes=offset) < REFILL_WINDOW:
        raise click.BadParameter("a refill step comes at most 30 days before the refill's due day and within "
                                 "a week after it (-3d, 0m, +2d)", param_hint="--at")
    if no_show and not 0 <= offset < 7 * 1440:
        raise click.BadParameter("a no-show step comes after the missed visit, within a week (+2h, +1d)",
                                 param_hint="--at")
    if not (no_show or refill) and offset >= 0:
        raise click.BadParameter("a reminder step comes before the appointment: give a negative time (-24h); "
                                 "--no-show makes a step after a missed visit", param_hint="--at")
    if -offset > LONGEST_OFFSET:
        raise click.BadParameter("a step is at most 90 days before the appointment", param_hint="--at")
    if not 5 <= retry_after <= LONGEST_RETRY:
        raise click.BadParameter("wait at least 5m and at most 7d between calls", param_hint="--retry-after")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,29}", name):
        raise click.BadParameter("a step name is up to 30 letters, digits, '-', '_' or '.' (72h-call)",
                                 param_hint="NAME")
    with current_services().sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise click.ClickException(f"no campaign with id {campaign_id}")
        if refill and campaign.appointment_type is not None:
            raise click.ClickException(f"campaign {campaign_id} is for {_kind(campaign)}: refill steps belong to "
                                       "the clinic's campaign for every appointment type")
        step = session.scalar(select(CampaignStep).where(CampaignStep.campaign_id == campaign_id,
                                                         CampaignStep.name == name))
        verb = "changed" if step is not None else "added"
        if step is None:
            step = CampaignStep(campaign_id=campaign_id, name=name)
            session.add(step)
        step.offset_minutes, step.channel, step.audience, step.fallback_sms = offset, channel, audience, fallback_sms
        step.purpose = "no_show" if no_show else "refill" if refill else "reminder"
        step.retry_on, step.max_attempts, step.retry_minutes = retry_on, attempts, retry_after
        session.flush()
        click.echo(f"campaign {campaign_id}: step {name!r} {verb}: {_describe_step(step)}")


def _describe_step(step: CampaignStep) -> str:
    who = "everyone" if step.audience == "all" else f"patients who prefer {step.audience}"
    how = {"preferred": "their preferred channel", "voice": "a call", "sms": "a text"}[step.channel]
    when = show_span(step.offset_minutes) + {"no_show": " after a missed visit",
                                             "refill": " from a refill's due day"}.get(step.purpose, "")
    text = f"{when}, {how}, for {who}"
    if step.channel != "sms":
        retried = step.retry_on.replace(",", ", ") or "nothing"
        text += f"; retries {retried} every {show_span(step.retry_minutes).lstrip('+')} up to {step.max_attempts} calls"
        if step.fallback_sms:
            text += ", then a text"
    return text


@campaign_group.command("active")
@click.argument("campaign_id", type=int)
@click.argument("setting", type=click.Choice(["on", "off"]))
@with_appcontext
def campaign_active(campaign_id: int, setting: str) -> None:
    """Resume or pause a campaign (paused: nothing new is planned; touches already planned still go)."""
    with current_services().sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise click.ClickException(f"no campaign with id {campaign_id}")
        if setting == "on":
            _refuse_second_active(session, campaign.clinic_id, campaign.appointment_type, campaign.id)
        campaign.active = setting == "on"
    click.echo(f"campaign {campaign_id}: {'active' if setting == 'on' else 'paused'}")


@campaign_group.command("list")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's campaigns.")
@with_appcontext
def campaign_list(clinic_id: int | None) -> None:
    """Show each campaign and its steps in order."""
    with current_services().sessions() as session:
        query = select(Campaign).order_by(Campaign.clinic_id, Campaign.id)
        if clinic_id is not None:
            query = query.where(Campaign.clinic_id == clinic_id)
        campaigns = session.scalars(query).all()
        if not campaigns:
            click.echo("no campaigns: add one with `ivr campaign add CLINIC_ID NAME`")
        for campaign in campaigns:
            state = "active" if campaign.active else "paused"
            consent = ", consent required" if campaign.require_consent else ""
            click.echo(f"{campaign.id}  {campaign.name}  clinic {campaign.clinic_id}  {_kind(campaign)}  {state}{consent}")
            for step in campaign.steps:
                click.echo(f"    {step.name}: {_describe_step(step)}")
            if not campaign.steps:
                click.echo("    (no steps yet)")


@campaign_group.command("plan")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]),
              help="First day, from midnight UTC (default: now).")
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]),
              help="Last day, to midnight UTC (default: 6 days after --from).")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's campaigns.")
@with_appcontext
def campaign_plan(since: dt.datetime | None, until: dt.datetime | None, clinic_id: int | None) -> None:
    """Show what the campaigns would send between two days, by the patient's own day, channel and
    step, and why anything is held back; sends nothing."""
    from outbound import campaigns

    now = dt.datetime.now(dt.timezone.utc)
    start = since.replace(tzinfo=dt.timezone.utc) if since else now
    end = until.replace(tzinfo=dt.timezone.utc) if until else start + dt.timedelta(days=6)
    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    if end - start > dt.timedelta(days=366):
        raise click.BadParameter("show at most a year at a time", param_hint="--to")
    end += dt.timedelta(days=1)  # the whole of the last day
    with current_services().sessions() as session:
        plan = campaigns.plan_campaigns(session, now, end, since=start, clinic_id=clinic_id)
    if not plan.total:
        click.echo("nothing to send in that range")
    else:
        _echo_rows([("day", "channel", "step", "contacts"), *campaigns.describe(plan)])
    _echo_held(plan)


def _echo_held(plan) -> None:
    if plan.held:
        click.echo("held back:")
        for (step, reason), count in sorted(plan.held.items()):
            click.echo(f"  {step}: {count} {reason}")


def _echo_rows(rows) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@campaign_group.command("run")
@click.option("--within-hours", default=72, show_default=True, type=click.IntRange(1, 24 * 30),
              help="Plan the contacts due within this many hours.")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic.")
@with_appcontext
def campaign_run(within_hours: int, clinic_id: int | None) -> None:
    """Plan every campaign's contacts due soon and queue them (never twice); clinics without a
    campaign get one reminder per appointment."""
    click.echo(schedule(within_hours, clinic_id))


def schedule(within_hours: int, clinic_id: int | None = None) -> str:
    """Plan campaign steps and lone reminders due within the hours, queue every planned touch,
    and say what was done. Shows a progress bar on long runs."""
    from sqlalchemy import func

    from ivr.models import Touch
    from outbound import campaigns, planning
    from outbound.jobs import reconcile_horizon
    from outbound.queueing import outbound_queue, reconcile

    services = current_services()
    now = dt.datetime.now(dt.timezone.utc)
    until = now + dt.timedelta(hours=within_hours)
    with read_only(services.sessions()) as session:
        total = _appointments_to_read(session, now, until, clinic_id)
        with click.progressbar(length=total, label="planning", file=sys.stderr,
                               hidden=total < LONG_RUN) as bar:
            plan = campaigns.plan_campaigns(session, now, until, clinic_id=clinic_id,
                                            writer=campaigns.batch_writer(services.sessions), progress=bar.update)
    with services.sessions.begin() as session:
        lone = planning.plan_reminders(session, now, until, clinic_id=clinic_id)
    # Queued now: what is due within the worker's horizon. The rest waits in the database, and
    # the worker's reconcile queues each touch as it comes near (Redis holds work in flight only).
    soon = now + reconcile_horizon(services.settings)
    with services.sessions() as session:
        touches = reconcile(outbound_queue(services.redis), planning.touches_to_queue(session, due_before=soon))
        waiting = session.scalar(select(func.count()).select_from(Touch).where(
            Touch.status == "planned", Touch.due_at >= soon))
    lines = [f"planned {plan.written + len(lone)} new contact(s); queued {touches.queued}; "
             f"{touches.live} already queued" + (f"; {touches.later} wait for their time" if touches.later else "")
             + (f"; {waiting} due later, queued by the worker as they come due" if waiting else "")]
    held = sum(plan.held.values())
    if held:
        lines.append(f"held back {held}: " + "; ".join(
            f"{step} {count} {reason}" for (step, reason), count in sorted(plan.held.items())))
    return "\n".join(lines)


def _appointments_to_read(session, now, until, clinic_id) -> int:
    """How many appointments the campaigns will read (the progress bar's length)."""
    from sqlalchemy import func

    from outbound import campaigns

    active = campaigns.active_campaigns(session, clinic_id)
    return sum(session.scalar(select(func.count()).select_from(
        campaigns.campaign_appointments(session, campaign, now, until, purpose).subquery()))
        for campaign in active for purpose in campaigns.PURPOSES
        if campaigns.steps_for(campaign, purpose)) + sum(
        session.scalar(select(func.count()).select_from(campaigns.campaign_prescriptions(campaign, now, until).subquery()))
        for campaign in campaigns.refill_campaigns(active))


@campaign_group.command("status")
@click.option("--clinic", "clinic_id", type=int, help="Only this clinic's campaigns.")
@with_appcontext
def campaign_status(clinic_id: int | None) -> None:
    """Show each campaign step's contacts by state: planned, placed, completed, unreached, skipped..."""
    from outbound import campaigns

    with current_services().sessions() as session:
        rows = campaigns.pending_steps(session, clinic_id)
    if not rows:
        click.echo("no campaign contacts yet: `ivr campaign run` plans them")
        return
    _echo_rows([("campaign", "step", "state", "contacts"), *((c, s, t, str(n)) for c, s, t, n in rows)])
