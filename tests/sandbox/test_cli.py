"""`ivr sandbox ...` and a demo reminder campaign, as an administrator runs them."""

import json
import re

import pytest

from ivr import create_app
from ivr.sandbox.calling import serve
from outbound.queueing import outbound_queue
from outbound.worker import AppSimpleWorker
from ivr.sandbox.calling import sandbox_config
from tests.support import AUTH_TOKEN, seed_demo_touch


# Port 9 (discard) has no server: the configured URL must not depend on `make run` being down.
def sandbox_app(database_url, redis, tmp_path, base="http://127.0.0.1:9"):
    return create_app({**sandbox_config(base), "ENV": "development", "DATABASE_URL": database_url,
                       "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS": redis,
                       "INSTANCE_PATH": str(tmp_path / "instance")})


@pytest.fixture
def admin(database_url, redis, tmp_path):
    """A CLI runner on a sandbox configuration, with the demo clinic loaded."""
    app = sandbox_app(database_url, redis, tmp_path)
    demo = seed_demo_touch(app.extensions["ivr"].sessions)
    yield app.test_cli_runner(), demo
    app.extensions["ivr"].engine.dispose()


def test_sandbox_call_in_process_prints_the_transcript_and_the_outcome(admin):
    runner, demo = admin
    result = runner.invoke(args=["sandbox", "call", "--appointment", str(demo.appointment_id),
                                 "--keys", "1,1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The job rendered the call's prompts before dialling, so each one plays in the local voice.
    played = [line for line in lines if line.startswith("      plays:  ")]
    assert re.fullmatch(r"      plays:  Hello\. This is Riverside Family Clinic calling\.  "
                        r"\[gmw/en-us, 150 wpm, \d+\.\d+ s\]", played[0]), played[0]
    assert lines.count("      caller: presses 1") == 2
    assert played[-1].startswith("      plays:  Thank you. Your appointment is confirmed. We look forward "
                                 "to seeing you. Goodbye.  [gmw/en-us, 150 wpm, ")
    assert "  call status: completed" in lines
    assert lines[-1].startswith(f"  recorded: call outcome confirmed, appointment {demo.appointment_id} is confirmed")


def test_sandbox_call_json_has_each_turn_and_the_database_outcome(admin):
    runner, demo = admin
    result = runner.invoke(args=["sandbox", "call", "--appointment", str(demo.appointment_id),
                                 "--keys", "1,3", "--json"])
    document = json.loads(result.output)
    turns = document["call"]["turns"]
    assert [t.get("reply") for t in turns] == [{"kind": "keys", "value": "1"},
                                              {"kind": "keys", "value": "3"}, None]
    first = turns[0]["prompts"][0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/audio/[0-9a-f]{64}\.wav", first["play"]), first
    assert first["rendered"] == {"text": "Hello. This is Riverside Family Clinic calling.",
                                 "language": "en", "voice": "gmw/en-us", "rate": 150}
    assert 1.5 < first["seconds"] < 5
    assert document["call"]["status"] == "completed"
    assert document["outcome"]["appointment_status"] == "reschedule_requested"
    assert document["outcome"]["call_outcome"] == "reschedule_requested"


def test_sandbox_call_to_a_busy_phone(admin):
    runner, demo = admin
    result = runner.invoke(args=["sandbox", "call", "--appointment", str(demo.appointment_id),
                                 "--answer", "busy", "--json"])
    document = json.loads(result.output)
    assert (document["call"]["status"], document["outcome"]["call_outcome"]) == ("busy", "unreached")


@pytest.mark.parametrize("args,message", [
    (["--appointment", "999", "--keys", "1"], "no appointment with id 999"),
    (["--appointment", "1", "--keys", "1x"], "keys may hold only 0-9, * and #"),
    (["--appointment", "1", "--url", "http://127.0.0.1:5000"], "is not this configuration's IVR_PUBLIC_BASE_URL"),
    (["--appointment", "1", "--url", "http://127.0.0.1:9"], "no server answers at http://127.0.0.1:9"),
])
def test_sandbox_call_errors_are_plain_messages(admin, args, message):
    runner, _ = admin
    result = runner.invoke(args=["sandbox", "call", *args])
    assert result.exit_code != 0 and message in result.output


def test_sandbox_refuses_to_run_against_production_settings(database_url, redis_url, redis, tmp_path):
    app = create_app({"ENV": "production", "DATABASE_URL": database_url, "REDIS": redis,
                      "REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
                      "TWILIO_AUTH_TOKEN": "real-secret", "PUBLIC_BASE_URL": "https://ivr.clinic.example",
                      "FROM_NUMBER": "+12125550100", "SECRET_KEY": "k" * 32, "INSTANCE_PATH": str(tmp_path)})
    assert "sandbox" not in {rule.endpoint.split(".")[0] for rule in app.url_map.iter_rules()}
    for args in (["sandbox", "phone", "+12125550143", "--keys", "1"],
                 ["sandbox", "call", "--appointment", "1"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 1
        assert "the sandbox carrier runs only outside production" in result.output
    app.extensions["ivr"].engine.dispose()


def test_demo_campaign_through_a_running_server(database_url, redis, tmp_path):
    """The README's campaign: script three phones, schedule reminders, let the worker call (and
    text Linda, who prefers texts). Jane gets her visit's reminder, which she confirms, and her
    metformin's refill prompt (it runs out in three days), whose 1 asks for the refill: a task for
    the pharmacy team and a text saying so."""
    import time

    from sqlalchemy import select

    from ivr.models import Message, Prescription, Task

    with serve(lambda base: sandbox_app(database_url, redis, tmp_path, base)) as (app, base):
        runner = app.test_cli_runner()
        assert runner.invoke(args=["seed-demo"]).exit_code == 0
        for number, args in (("+12125550143", ["--keys", "1,1"]), ("+12125550162", ["--keys", "1,3"]),
                             ("+12125550178", ["--answer", "machine_end_beep"])):
            said = runner.invoke(args=["sandbox", "phone", number, *args])
            assert said.exit_code == 0, said.output
        assert runner.invoke(args=["sandbox", "phone", "+12125550143", "--keys", "1,1"]).output == (
            "+12125550143 answers as human; then presses 1, presses 1; then silence; texts are delivered and it texts back nothing\n")
        assert runner.invoke(args=["reminders", "schedule"]).output.startswith("planned 5 new contact(s)")
        sessions = app.extensions["ivr"].sessions
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the calls, Linda's text, then Jane's confirming text
            AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app).work(burst=True)
            with sessions() as session:
                texts = session.scalars(select(Message).where(Message.direction == "outbound")).all()
            if len(texts) == 2 and all(m.status == "delivered" for m in texts):
                break
            time.sleep(0.1)
        table = runner.invoke(args=["reminders", "outcomes", "--wait", "30"]).output.splitlines()
        with sessions() as session:
            metformin = session.scalars(select(Prescription).where(Prescription.medication == "metformin")).one()
            tasks = [(t.kind, t.prescription_id, t.patient_id, t.status) for t in session.scalars(select(Task))]
            texts = [(m.to_number, m.kind, m.status, m.body) for m in session.scalars(
                select(Message).where(Message.direction == "outbound", Message.kind == "confirmation"))]
    assert table[0].split() == ["subject", "contact", "touch", "call", "outcome", "subject", "status"]
    rows = sorted(line.split() for line in table[1:])
    assert rows == [["1", "reminder", "completed", "completed", "confirmed", "confirmed"],
                    ["2", "reminder", "completed", "completed", "reschedule_requested", "reschedule_requested"],
                    ["3", "reminder", "completed", "completed", "voicemail", "booked"],
                    ["4", "reminder", "completed", "text", "delivered", "waiting", "booked"],
                    [f"rx-{metformin.id}", "refill", "completed", "completed", "refill_requested", "refill_requested"]]
    assert ("refill_request", metformin.id, metformin.patient_id, "open") in tasks
    assert texts == [("+12125550143", "confirmation", "delivered",
                      "Thank you. We have your refill request. Our pharmacy team will look at it within one "
                      "business day. Riverside Family Clinic")]


@pytest.mark.parametrize("staff,result,outcome", [("answers", "bridged", "transferred"),
                                                  ("no-answer", "leave", "call_back_promised")])
def test_an_unknown_caller_waits_in_the_queue_and_staff_hear_a_whisper(admin, staff, result, outcome):
    runner, demo = admin
    made = runner.invoke(args=["sandbox", "call", "--inbound", "--staff", staff, "--keys", "silence,0", "--json"])
    assert made.exit_code == 0, made.output
    document = json.loads(made.output)
    (welcome, _date_of_birth, turn, *rest) = document["call"]["turns"]
    assert [p["say"] for p in welcome["prompts"]][:2] == ["Thank you for calling Riverside Family Clinic.",
                                                          "If this is an emergency, hang up and dial 9 1 1 now."]
    assert [p["say"] for p in turn["prompts"]] == ["Please hold while I connect you to our staff."]
    assert turn["queue"]["result"] == result
    assert [p["say"] for p in turn["queue"]["waits"][0]["prompts"]] == [
        "You are next in line.", "To hang up and get a call back as soon as someone is free, press 1."]
    staff_calls = document["call"]["staff_calls"]
    assert {c["to"] for c in staff_calls} == {demo.staff_phone}
    if staff == "answers":
        (taken,) = staff_calls
        assert [p["say"] for p in taken["heard"]] == ["A caller from a number we do not know.",
                                                       "Press 1 to take the call. Press 2 to pass."]
        assert taken["pressed"] == ["1"] and taken["dial"][0]["status"] == "completed"
    else:
        # Nobody took it: a call back or a message is offered; waiting means a person calls back.
        assert all(c["status"] == "no-answer" for c in staff_calls)
        assert [p["say"] for p in rest[0]["prompts"]] == [
            "No one is free to take your call right now. To get a call back as soon as someone is free, "
            "press 1. To leave a message, press 2."]
        assert [p["say"] for p in rest[-1]["prompts"]] == [
            "Sorry, no one could take your call. Someone from our office will call you back within one "
            "business day. Goodbye."]
    assert document["outcome"]["call_outcome"] == outcome
    assert document["call"]["direction"] == "inbound" and document["call"]["to"] == "+12125550100"


def test_a_patient_calls_in_with_keys_and_the_transcript_shows_it(admin):
    runner, _ = admin
    lines = runner.invoke(args=["sandbox", "call", "--inbound", "--from", "+12125550143",
                                "--keys", "silence,04121950,1,1,0"]).output.splitlines()
    # The date of birth is not shown: a transcript is kept for a week.
    assert "      caller: presses 8 keys (not shown)" in lines and "      says:   Thank you, Jane." in lines
    assert not any("04121950" in line for line in lines)
    assert ("  staff phone +12125550199 (completed) hears: A call from Jane. Their date of birth matched. They "
            "asked for a person. They confirmed their next appointment. Press 1 to take the call. Press 2 to "
            "pass.") in lines
    assert "      staff: connected to the caller: completed" in lines
    assert any(line.startswith("      left the queue: bridged after ") for line in lines)
    assert lines[-1] == "  recorded: call outcome transferred"


def test_call_needs_an_appointment_or_inbound(admin):
    runner, _ = admin
    result = runner.invoke(args=["sandbox", "call", "--keys", "1"])
    assert result.exit_code == 2 and "give --appointment ID for a reminder call, or --inbound" in result.output



def test_the_transcript_says_when_the_server_was_unsure_of_an_answer():
    from ivr.sandbox.calling import CallResult, describe

    turn = {"url": "http://x/twilio/voice/step", "reply": {"kind": "audio", "value": "/clips/stop.wav"}}
    call = {"sid": "CA1", "from": "+1", "to": "+2", "direction": "outbound-api", "status": "completed",
            "turns": [turn, turn]}
    speech = [{"text": "", "rejected": "stop", "intent": None, "confidence": 0.12, "engine": "pocketsphinx"},
              {"text": "", "rejected": "chest pain", "intent": "emergency", "confidence": 0.1,
               "engine": "pocketsphinx"}]
    lines = describe(CallResult(call, {"speech": speech, "call_outcome": "emergency"})).splitlines()
    assert "      server heard 'stop' but was unsure (confidence 0.12, pocketsphinx): not acted on" in lines
    assert "      server heard: 'chest pain' -> emergency (confidence 0.1, pocketsphinx)" in lines


def test_a_sandbox_phone_texts_the_clinic_and_sees_the_answer(admin):
    runner, _demo = admin
    result = runner.invoke(args=["sandbox", "text", "+12125550177", "help"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "+12125550177 -> +12125550100: help"
    assert "+12125550100 -> +12125550177: Reply STOP to unsubscribe. Msg&Data Rates May Apply." in lines
    assert ("+12125550100 -> +12125550177: Riverside Family Clinic: appointment messages. For help, call "
            "(212) 555-0100. Reply STOP to stop getting texts.") in lines


def test_a_sandbox_phone_can_be_told_how_to_answer_texts(admin):
    runner, _demo = admin
    result = runner.invoke(args=["sandbox", "phone", "+12125550143", "--sms-reply", "C", "--sms-status", "delivered"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("texts are delivered and it texts back 'C'")
    bad = runner.invoke(args=["sandbox", "text", "12345", "hi"])
    assert bad.exit_code == 2 and "'12345' is not a phone number in E.164 form" in bad.output


def test_an_inbound_call_nobody_answers_shows_the_missed_call_text_in_its_transcript(admin):
    runner, _demo = admin
    result = runner.invoke(args=["sandbox", "call", "--inbound", "--from", "+12125550111", "--staff", "no-answer"])
    assert result.exit_code == 0, result.output
    assert ("  text to +12125550111: Riverside Family Clinic: sorry we missed your call. Someone will call you "
            "back within one business day. In an emergency, dial 911.  [delivered]") in result.output.splitlines()


def test_demo_campaign_calls_texts_retries_a_busy_line_and_then_texts_it(database_url, redis, tmp_path):
    """The outreach issue's demo: voice reminders for patients who prefer calls, texts for the
    others, a busy line tried again until the step's limit, then a text instead; and Jane's refill
    prompt, which ends in a refill task."""
    import time

    from sqlalchemy import select, update

    from ivr.models import CampaignStep, Message, Prescription, Task, Touch

    def settled(sessions, appointment_id):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sessions() as session:
                if all(t.status not in ("dialing", "placed") for t in session.scalars(
                        select(Touch).where(Touch.appointment_id == appointment_id))):
                    return
            time.sleep(0.1)
        raise AssertionError("calls still in progress after 30 s")

    with serve(lambda base: sandbox_app(database_url, redis, tmp_path, base)) as (app, base):
        runner, sessions = app.test_cli_runner(), app.extensions["ivr"].sessions
        assert runner.invoke(args=["seed-demo"]).exit_code == 0
        with sessions.begin() as session:  # retries at once, so that the test need not wait
            session.execute(update(CampaignStep).values(retry_minutes=0))
        runner.invoke(args=["sandbox", "phone", "+12125550143", "--keys", "1,1"])
        runner.invoke(args=["sandbox", "phone", "+12125550162", "--answer", "busy"])
        assert runner.invoke(args=["patients", "channel", "3", "sms"]).exit_code == 0
        ran = runner.invoke(args=["campaign", "run"])
        assert ran.output.startswith("planned 5 new contact(s); queued 5;"), ran.output
        worker = AppSimpleWorker([outbound_queue(redis)], connection=redis, app=app)
        for _ in range(4):  # the first calls, two retries, then the text
            worker.work(burst=True)
            settled(sessions, 2)
            assert runner.invoke(args=["reminders", "reconcile"]).exit_code == 0
        worker.work(burst=True)
        with sessions() as session:
            touches = {(t.appointment_id or f"rx-{t.prescription_id}", t.step): (t.channel, t.status, t.attempts)
                       for t in session.scalars(select(Touch))}
            texted = sorted((m.to_number, m.kind) for m in session.scalars(
                select(Message).where(Message.direction == "outbound")))
            metformin = session.scalars(select(Prescription).where(Prescription.medication == "metformin")).one()
            refills = [(t.kind, t.prescription_id) for t in session.scalars(select(Task).where(
                Task.kind == "refill_request"))]
    assert touches == {(1, "reminder"): ("voice", "completed", 1),
                       (2, "reminder"): ("voice", "unreached", 3),
                       (2, "reminder-text"): ("sms", "completed", 1),
                       (3, "reminder"): ("sms", "completed", 1),
                       (4, "reminder"): ("sms", "completed", 1),   # Linda prefers texts
                       (f"rx-{metformin.id}", "refill"): ("voice", "completed", 1)}
    assert texted == [("+12125550143", "confirmation"), ("+12125550162", "reminder"), ("+12125550178", "reminder"),
                      ("+12125550185", "reminder")]
    assert refills == [("refill_request", metformin.id)]
