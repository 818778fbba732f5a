"""`ivr sandbox ...`: place sandbox calls and set how sandbox phones answer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import requests
from flask import current_app
from flask.cli import with_appcontext

from ivr.config import is_e164
from ivr.sandbox import script as scripts
from ivr.services import current_services


@click.group("sandbox")
def sandbox_group() -> None:
    """Try call flows end to end with the sandbox carrier (no Twilio needed)."""


def _script_options(command):
    command = click.option("--sms-reply", "sms_replies", multiple=True,
                           help="What the phone texts back to each text it gets, in order (repeatable).")(command)
    command = click.option("--sms-status", type=click.Choice(scripts.TEXT_STATUSES),
                           help="How texts to the phone fare (default delivered).")(command)
    command = click.option("--queue", "in_queue", type=click.Choice(scripts.QUEUE),
                           help="What the caller does while waiting in the clinic's queue: waits (the "
                                "default), call_back (presses 1 to be called back) or hangup.")(command)
    command = click.option("--staff", type=click.Choice(scripts.STAFF),
                           help="What staff do: take the call (answers, the default), pass it, or not pick "
                                "up; for a call, the clinic's sandbox staff phones do so during it.")(command)
    command = click.option("--answer", type=click.Choice(scripts.ANSWERS),
                           help="How the phone answers (default human).")(command)
    command = click.option("--script", "script_file", type=click.Path(dir_okay=False, path_type=Path),
                           help="A caller script file (YAML or JSON).")(command)
    command = click.option("--keys", help="Replies in order, e.g. 1,9,silence,1 or 1,hangup; "
                                          "@FILE.wav speaks that recording.")(command)
    return command


def _script(keys: str | None, script_file: Path | None, answer: str | None, staff: str | None,
            sms_status: str | None = None, sms_replies: tuple[str, ...] = (), in_queue: str | None = None):
    """The caller script from the options; a bad one is a usage error naming the problem."""
    if keys and script_file:
        raise click.UsageError("give --keys or --script, not both")
    try:
        base = scripts.load(script_file) if script_file else scripts.from_keys(keys or "")
        data = base.as_dict()
        if answer:
            data["answer"] = answer
        if staff:
            data["staff"] = staff
        if in_queue:
            data["queue"] = in_queue
        if sms_status:
            data["texts"]["status"] = sms_status
        if sms_replies:
            data["texts"]["replies"] = list(sms_replies)
        return scripts.parse(data)
    except scripts.ScriptError as exc:
        raise click.BadParameter(str(exc)) from None


def _require_sandbox() -> None:
    settings = current_services().settings
    if settings.is_production or settings.carrier != "sandbox":
        raise click.ClickException("the sandbox carrier runs only outside production: "
                                   "set IVR_ENV=development (and leave IVR_CARRIER unset)")


@sandbox_group.command("phone")
@click.argument("number")
@_script_options
@with_appcontext
def phone(number: str, keys, script_file, answer, staff, in_queue, sms_status, sms_replies) -> None:
    """Set how the sandbox phone at NUMBER (E.164) answers calls and texts from now on."""
    _require_sandbox()
    if not is_e164(number):
        raise click.BadParameter(f"{number!r} is not a phone number in E.164 form", param_hint="NUMBER")
    script = _script(keys, script_file, answer, staff, sms_status, sms_replies, in_queue)
    from ivr.sandbox.carrier import SandboxCarrier

    services = current_services()
    SandboxCarrier.store_for(services.settings, services.redis).set_phone(number, script)
    replies = ", ".join(r.describe() for r in script.replies) or "nothing"
    texts = ", ".join(repr(r) for r in script.text_replies) or "nothing"
    click.echo(f"{number} answers as {script.answer}; then {replies}; then {script.then}; "
               f"texts are {script.text_status} and it texts back {texts}")


@sandbox_group.command("call")
@click.option("--appointment", "appointment_id", type=int,
              help="Place a reminder call about this appointment (its patient's phone rings).")
@click.option("--inbound", is_flag=True, help="Call one of our numbers instead (see --from, --to).")
@click.option("--from", "from_", default="+12125550111", show_default=True,
              help="With --inbound: the sandbox phone that calls.")
@click.option("--to", help="With --inbound: the clinic number called (default: the only clinic's).")
@_script_options
@click.option("--url", help="A running server to go through (its IVR_PUBLIC_BASE_URL); "
                            "without it a server and a worker run in this process.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option("--timeout", default=60, show_default=True, type=click.IntRange(1, 600),
              help="Seconds to wait for the call to be placed and to end.")
@with_appcontext
def call(appointment_id, inbound, from_, to, keys, script_file, answer, staff, in_queue, sms_status, sms_replies,
         url, as_json, timeout) -> None:
    """Place a sandbox call (a reminder, or --inbound to a clinic) and print what was heard and done."""
    from ivr import create_app
    from ivr.sandbox import calling

    _require_sandbox()
    if inbound == (appointment_id is not None):
        raise click.UsageError("give --appointment ID for a reminder call, or --inbound")
    script = _script(keys, script_file, answer, staff, sms_status, sms_replies, in_queue)
    if inbound:
        for value, name in ((from_, "--from"), (to, "--to")):
            if value and not is_e164(value):
                raise click.BadParameter(f"{value!r} is not a phone number in E.164 form", param_hint=name)
        to = to or _only_clinic_number()
    settings = current_services().settings
    for noisy in ("rq", "werkzeug", "ivr", "outbound"):  # the transcript is the output
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if url:
            _check_server(url.rstrip("/"), settings.public_base_url)
            app = current_app._get_current_object()
            result = (calling.place_inbound_call(app, from_, to, script, timeout=timeout, staff_override=bool(staff))
                      if inbound
                      else calling.place_reminder_call(app, appointment_id, script, run_worker=False,
                                                       timeout=timeout))
        else:
            def make(base: str):
                return create_app({**calling.sandbox_config(base), "ENV": settings.env,
                                   "DATABASE_URL": settings.database_url,
                                   "REDIS": current_services().redis,
                                   "INSTANCE_PATH": settings.instance_path})

            with calling.serve(make) as (app, _base):
                result = (calling.place_inbound_call(app, from_, to, script, timeout=timeout, run_worker=True,
                                                     staff_override=bool(staff))
                          if inbound
                          else calling.place_reminder_call(app, appointment_id, script, run_worker=True,
                                                           timeout=timeout))
    except calling.SandboxCallError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else calling.describe(result))


@sandbox_group.command("text")
@click.argument("number")
@click.argument("body")
@click.option("--to", help="The clinic number texted (default: the only clinic's).")
@click.option("--url", help="A running server to go through (its IVR_PUBLIC_BASE_URL); "
                            "without it a server and a worker run in this process.")
@click.option("--wait", default=10, show_default=True, type=click.IntRange(0, 120),
              help="Seconds to wait for the server's answers.")
@with_appcontext
def text(number: str, body: str, to: str | None, url: str | None, wait: int) -> None:
    """Text BODY from the sandbox phone at NUMBER to a clinic, and print what it texts back."""
    from ivr import create_app
    from ivr.sandbox import calling

    _require_sandbox()
    for value, name in ((number, "NUMBER"), (to, "--to")):
        if value and not is_e164(value):
            raise click.BadParameter(f"{value!r} is not a phone number in E.164 form", param_hint=name)
    to = to or _only_clinic_number()
    settings = current_services().settings
    for noisy in ("rq", "werkzeug", "ivr", "outbound"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if url:
        _check_server(url.rstrip("/"), settings.public_base_url)
        answers = calling.text_clinic(current_app._get_current_object(), number, to, body, wait, run_worker=False)
    else:
        def make(base: str):
            return create_app({**calling.sandbox_config(base), "ENV": settings.env,
                               "DATABASE_URL": settings.database_url, "REDIS": current_services().redis,
                               "INSTANCE_PATH": settings.instance_path})

        with calling.serve(make) as (app, _base):
            answers = calling.text_clinic(app, number, to, body, wait, run_worker=True)
    click.echo(f"{number} -> {to}: {body}")
    for answer in answers:
        click.echo(f"{answer['from']} -> {number}: {answer['body']}")
    if not answers:
        click.echo(f"no answer within {wait} s")


def _only_clinic_number() -> str:
    """The number of the one clinic configured; with several, --to must say which."""
    from sqlalchemy import select

    from ivr.models import Clinic

    with current_services().sessions() as session:
        numbers = session.scalars(select(Clinic.phone)).all()
    if len(numbers) != 1:
        raise click.UsageError(f"{len(numbers)} clinics are configured: give --to NUMBER")
    return numbers[0]


def _check_server(url: str, public_base_url: str) -> None:
    """The server must answer, run the sandbox, and be the one our worker's calls go to."""
    if url != public_base_url:
        raise click.ClickException(f"--url {url} is not this configuration's IVR_PUBLIC_BASE_URL "
                                   f"({public_base_url}); the worker sends calls there")
    try:
        health = requests.get(f"{url}/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        raise click.ClickException(f"no server answers at {url} (start it with `make run`, "
                                   f"or leave out --url to run one in this process)") from None
    if health.get("carrier") != "sandbox":
        raise click.ClickException(f"the server at {url} does not run the sandbox carrier")
