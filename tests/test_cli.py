"""The `ivr` command as an administrator uses it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.models import Touch

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["appointments", "campaign", "clinics", "db", "import", "patients", "prescriptions", "prompts", "reminders", "routes", "run", "sandbox", "seed-demo", "shell", "speech",
            "tasks", "tokens", "webhooks", "worker"]


def ivr(*args, env=None, cwd=None):
    """Run the installed console script with a clean IVR_* environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    script = Path(sys.executable).with_name("ivr")
    return subprocess.run([str(script), *args], env={**clean, **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_without_any_configuration(tmp_path):
    result = ivr("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].strip().splitlines()]
    assert listed == COMMANDS
    assert result.stderr == ""


def test_flask_app_option_reaches_the_same_commands(tmp_path):
    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run([str(flask), "--app", "ivr", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "IVR_ENV": "development",
                                            "IVR_INSTANCE_PATH": str(tmp_path)})
    for command in ("db", "reminders", "seed-demo", "worker"):
        assert f"\n  {command} " in result.stdout


def test_missing_secret_in_production_stops_with_the_variable_name(tmp_path):
    result = ivr("db", "upgrade", cwd=tmp_path, env={
        "IVR_ENV": "production", "IVR_TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
        "IVR_PUBLIC_BASE_URL": "https://ivr.example", "IVR_FROM_NUMBER": "+12125550100",
        "IVR_SECRET_KEY": "k" * 32, "IVR_REDIS_URL": "redis://127.0.0.1:9/0"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error: IVR_TWILIO_AUTH_TOKEN is required when IVR_ENV=production "
                                     "(set IVR_ENV=development to run against the sandbox carrier)")


def test_an_unsafe_production_setting_stops_with_one_line(tmp_path):
    result = ivr("worker", cwd=tmp_path, env={
        "IVR_ENV": "production", "IVR_TWILIO_ACCOUNT_SID": "AC" + "a" * 32, "IVR_TWILIO_AUTH_TOKEN": "t",
        "IVR_PUBLIC_BASE_URL": "https://ivr.example", "IVR_FROM_NUMBER": "+12125550100",
        "IVR_SECRET_KEY": "k" * 32})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: IVR_REDIS_URL is required when IVR_ENV=production: the "
                                    "embedded Redis is for development only")
    assert len(result.stderr.strip().splitlines()) == 1


def test_development_upgrade_and_seed_with_no_secrets(tmp_path):
    env = {"IVR_ENV": "development", "IVR_INSTANCE_PATH": str(tmp_path)}
    upgrade = ivr("db", "upgrade", env=env, cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "ivr.sqlite3").exists()
    first, second = ivr("seed-demo", env=env, cwd=tmp_path), ivr("seed-demo", env=env, cwd=tmp_path)
    assert first.stdout.strip() == "created demo clinic 'Riverside Family Clinic' (id 1) with 4 patients"
    assert second.stdout.strip() == ("already present: demo clinic 'Riverside Family Clinic' (id 1) "
                                     "with 4 patients")
    current = ivr("db", "current", env=env, cwd=tmp_path)
    assert f"{newest_revision()} (head)" in current.stdout


def newest_revision() -> str:
    """The head of our migrations, as Alembic sees it."""
    from alembic.script import ScriptDirectory

    from ivr.cli import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_reminders_schedule_plans_and_queues_each_appointment_once(runner, sessions, redis):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    first = runner.invoke(args=["reminders", "schedule", "--within-hours", "72"])
    # Four visits' reminders (three calls, a text) and Jane's metformin refill prompt (it runs out
    # in three days).
    assert first.output.strip() == "planned 5 new contact(s); queued 5; 0 already queued"
    again = runner.invoke(args=["reminders", "schedule", "--within-hours", "72"])
    assert again.output.strip() == "planned 0 new contact(s); queued 0; 5 already queued"
    with sessions() as session:
        assert len(session.scalars(select(Touch)).all()) == 5
    from outbound.queueing import outbound_queue
    assert outbound_queue(redis).count == 5


@pytest.mark.parametrize("hours", [1, 30, 60])
def test_reminders_schedule_respects_the_window(runner, sessions, hours):
    import datetime as dt

    from ivr.models import Appointment, utcnow

    runner.invoke(args=["seed-demo"])
    # A clinic that never set up a campaign: its appointments starting within the hours get one
    # reminder each.
    from sqlalchemy import delete
    from ivr.models import Campaign, CampaignStep
    with sessions.begin() as session:
        session.execute(delete(CampaignStep))
        session.execute(delete(Campaign))
    with sessions() as session:
        limit = utcnow() + dt.timedelta(hours=hours)
        expected = sum(a.starts_at <= limit for a in session.scalars(select(Appointment)))
    result = runner.invoke(args=["reminders", "schedule", "--within-hours", str(hours)])
    assert result.output.startswith(f"planned {expected} new contact(s); queued {expected};")


def test_clinic_and_patient_settings_for_texts_and_retries(runner, sessions, demo):
    from ivr.models import Clinic, Patient

    assert runner.invoke(args=["clinics", "text-privacy", "1", "on"]).output.strip() == \
        "clinic 1: private reminder texts on"
    assert runner.invoke(args=["clinics", "retry-wrong-person", "1", "on"]).output.strip() == \
        "clinic 1: retry when someone else answers on"
    assert runner.invoke(args=["patients", "channel", "1", "sms"]).output.strip() == "patient 1: reminders by text"
    with sessions() as session:
        clinic, patient = session.get(Clinic, 1), session.get(Patient, 1)
        assert (clinic.sms_private, clinic.retry_wrong_person, patient.preferred_channel) == (True, True, "sms")
    missing = runner.invoke(args=["clinics", "text-privacy", "9", "on"])
    assert missing.exit_code == 1 and "no clinic with id 9" in missing.output
