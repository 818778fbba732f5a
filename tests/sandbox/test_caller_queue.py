"""The caller queue across the real stack: sandbox phones call the clinic over real HTTP and wait
in Twilio queues (<Enqueue>) hearing their place; a real RQ worker rings the staff lines (the
sandbox's phones), whose staff take a caller out of the queue (<Dial><Queue>) or pass."""

import time

import pytest
from sqlalchemy import select, update

from ivr.models import Call, CallEvent, Clinic, Escalation, Message, StaffLine, Task
from ivr.sandbox import calling, script as scripts
from ivr.sandbox.carrier import SandboxCarrier
from outbound.callbacks import enqueue_call_back
from outbound.queueing import outbound_queue

JANE = "+12125550143"
STRANGER = "+12125550111"
CLINIC = "+12125550100"
STAFF = "+12125550199"
SECOND_LINE = "+12125550198"
# Jane: the language offer passes, her date of birth, 3 for a person.
JANE_ASKS_FOR_A_PERSON = ["silence", "04121950", "3"]


@pytest.fixture
def live(sandbox_app_factory):
    from ivr import demo

    with calling.serve(sandbox_app_factory) as (app, _base):
        with app.extensions["ivr"].sessions.begin() as session:
            demo.seed(session)
        yield app


def store(app):
    services = app.extensions["ivr"]
    return SandboxCarrier.store_for(services.settings, services.redis)


def staff_phone(app, number, replies, answer="human"):
    """How a staff phone behaves when the worker rings it: its key at the whisper."""
    store(app).set_phone(number, scripts.parse({"answer": answer, "replies": replies}))


def call_in(app, caller, replies, run_worker=True, timeout=60, in_queue="waits"):
    return calling.place_inbound_call(app, caller, CLINIC, scripts.parse({"replies": replies, "queue": in_queue}),
                                      run_worker=run_worker, timeout=timeout)


def queue_turn(result):
    (turn,) = [t for t in result.transcript["turns"] if "queue" in t]
    return turn["queue"]


def waits_heard(queue):
    return [[calling.heard(p) for p in wait["prompts"]] for wait in queue["waits"]]


def staff_calls(app, number):
    return [c for c in store(app).calls() if c["to"] == number]


def staff_heard(app, number):
    """What each call to a staff phone said, in order."""
    return [[calling.heard(p) for t in store(app).transcript(c["sid"])["turns"] for p in t.get("prompts", [])]
            for c in staff_calls(app, number)]


def the_escalation(app):
    with app.extensions["ivr"].sessions() as session:
        return session.scalars(select(Escalation)).one()


def annotate(app, transcript):
    return calling.annotate_played(app, transcript)


WAIT_OFFER = "To hang up and get a call back as soon as someone is free, press 1."
STAFF_CHOICE = "Press 1 to take the call. Press 2 to pass."


def test_a_caller_hears_their_place_and_staff_who_heard_why_take_them_from_the_queue(live):
    with live.extensions["ivr"].sessions.begin() as session:   # however slow the worker, no wait runs out
        session.execute(update(Clinic).values(queue_max_wait=3600))
    staff_phone(live, STAFF, ["1"])
    result = call_in(live, JANE, JANE_ASKS_FOR_A_PERSON)
    queue = queue_turn(result)
    assert queue["result"] == "bridged"
    assert waits_heard(queue)[0] == ["You are next in line.", WAIT_OFFER]
    (heard,) = staff_heard(live, STAFF)
    assert [h for h in heard if h] == ["A call from Jane. Their date of birth matched. They asked for a person.",
                                       STAFF_CHOICE]
    (staff_call,) = staff_calls(live, STAFF)
    (dial,) = [t["dial"] for t in store(live).transcript(staff_call["sid"])["turns"] if "dial" in t]
    assert (dial["status"], dial["caller"]) == ("completed", result.outcome["call_sid"])
    escalation = the_escalation(live)
    assert (escalation.queue_status, escalation.outcome, escalation.staff_phone) == ("taken", "answered", STAFF)
    assert escalation.answered_at >= escalation.started_at
    assert result.outcome["call_outcome"] == "transferred"
    assert result.transcript["texts"] == []


def two_callers_in_line(live, *, run_worker: bool):
    """Jane asks for a person, then (once she waits in line) a stranger does too; with
    run_worker, a worker rings staff once both wait. The two queues, as the callers lived them."""
    services = live.extensions["ivr"]
    carrier = SandboxCarrier(services.settings, services.redis, max_calls=2)

    def in_line(call):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not store(live).queue_place(f"ivr-{call.sid}", call.sid):
            time.sleep(0.05)

    try:
        first = carrier.inbound(JANE, CLINIC)
        playing_first = carrier.start(first, scripts.parse({"replies": JANE_ASKS_FOR_A_PERSON}))
        in_line(first)
        second = carrier.inbound(STRANGER, CLINIC)
        playing_second = carrier.start(second, scripts.parse({"replies": ["silence", "0"]}))
        if run_worker:
            in_line(second)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (playing_first.done() and playing_second.done()):
                calling._work(live)
                time.sleep(0.1)
        done = playing_first.result(timeout=120), playing_second.result(timeout=120)
    finally:
        carrier.executor.shutdown(wait=True)
    return [[t["queue"] for t in annotate(live, call.as_dict())["turns"] if "queue" in t][0] for call in done]


def test_the_second_caller_hears_that_one_caller_is_ahead(live):
    """Two callers wait at once (no worker rings staff yet): the one who came second hears that
    one caller is ahead; the first hears they are next."""
    with live.extensions["ivr"].sessions.begin() as session:
        session.execute(update(Clinic).values(queue_max_wait=900))
    first_queue, second_queue = two_callers_in_line(live, run_worker=False)
    assert waits_heard(second_queue)[0] == ["There is one caller ahead of you.", WAIT_OFFER]
    assert waits_heard(first_queue)[0] == ["You are next in line.", WAIT_OFFER]
    # Nobody rang staff: both waited the clinic's longest wait, then were offered a call back.
    assert (first_queue["result"], second_queue["result"]) == ("leave", "leave")
    assert first_queue["waited"] >= 900


def test_staff_who_pass_ring_the_next_line_and_when_nobody_takes_the_caller_they_get_a_call_back(live):
    with live.extensions["ivr"].sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        clinic.queue_max_wait = 900   # some seven seconds of the sandbox's passes: rings enough
        session.add(StaffLine(clinic_id=clinic.id, position=1, phone=SECOND_LINE))
    staff_phone(live, STAFF, ["2"])
    staff_phone(live, SECOND_LINE, [], answer="no-answer")
    result = call_in(live, JANE, [*JANE_ASKS_FOR_A_PERSON, "1"])
    queue = queue_turn(result)
    assert queue["result"] == "leave"
    heard = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert ["No one is free to take your call right now. To get a call back as soon as someone is free, press 1. "
            "To leave a message, press 2."] in heard
    assert heard[-1] == ["Thank you. We will call you back as soon as someone is free. Goodbye."]
    # The queue rang each line once, in order; then the call back rang the staff phone.
    escalation = the_escalation(live)
    rung = [(c["to"], c["url"].split("/twilio/voice/")[1]) for c in store(live).calls()
            if c["direction"] == "outbound-api"]
    # Round after round while the caller waited, each line in order; then the call back.
    queue_rings, call_back = rung[:-1], rung[-1]
    assert queue_rings[:2] == [(STAFF, f"queue/staff/{escalation.id}/0"),
                               (SECOND_LINE, f"queue/staff/{escalation.id}/1")]
    assert queue_rings == queue_rings[:2] * (len(queue_rings) // 2) + queue_rings[:len(queue_rings) % 2]
    assert call_back == (STAFF, f"callback/{escalation.id}")
    assert (escalation.queue_status, escalation.outcome) == ("unanswered", "call_back")
    with live.extensions["ivr"].sessions() as session:
        choices = list(session.scalars(select(CallEvent.detail).where(CallEvent.kind == "staff")))
    assert choices and all(choice == {"accepted": False} for choice in choices)  # a pass each time


def test_pressing_1_in_the_queue_keeps_the_place_for_exactly_one_call_back(live):
    """No worker runs during the call: the caller presses 1 at the first wait, leaves the queue,
    and is promised a call back; its job, queued once however often asked, rings staff once."""
    result = call_in(live, JANE, JANE_ASKS_FOR_A_PERSON, run_worker=False, in_queue="call_back")
    queue = queue_turn(result)
    assert queue["result"] == "leave"
    assert queue["waits"][0]["reply"] == {"kind": "keys", "value": "1"}
    heard = [[calling.heard(p) for p in t.get("prompts", [])] for t in result.transcript["turns"]]
    assert heard[-1] == ["Thank you. We will call you back as soon as someone is free. Goodbye."]
    escalation = the_escalation(live)
    assert (escalation.queue_status, escalation.callback_status, escalation.outcome) == (
        "call_back", "planned", "call_back")
    staff_phone(live, STAFF, ["1"])
    assert enqueue_call_back(outbound_queue(live.extensions["ivr"].redis), escalation.id) is False  # queued once
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and the_escalation(live).callback_status not in ("done", "failed"):
        calling._work(live)
        time.sleep(0.2)
    assert the_escalation(live).callback_status == "done"
    # The queue's own ringing stopped when the caller left it: one staff call, the call back's.
    (staff_call,) = staff_calls(live, STAFF)
    (dial,) = [t["dial"] for t in store(live).transcript(staff_call["sid"])["turns"] if "dial" in t]
    assert (dial["to"], dial["status"]) == (JANE, "completed")


def test_a_caller_who_hangs_up_in_the_queue_is_abandoned_and_gets_one_text(live):
    result = call_in(live, JANE, JANE_ASKS_FOR_A_PERSON, in_queue="hangup")
    assert queue_turn(result)["result"] == "hangup"
    escalation = the_escalation(live)
    assert (escalation.queue_status, escalation.outcome) == ("gone", "abandoned")
    assert len(result.transcript["texts"]) == 1
    with live.extensions["ivr"].sessions() as session:
        assert session.scalars(select(Message.kind)).all() == ["text_back"]
        call = session.scalars(select(Call).where(Call.call_sid == result.outcome["call_sid"])).one()
        assert call.outcome == "hung_up"
        assert len(session.scalars(select(Task).where(Task.kind == "call_back")).all()) == 1


def test_two_callers_are_taken_in_turn_the_second_told_first_that_one_caller_is_ahead(live):
    """One staff phone that takes every caller; two callers wait at once. Staff are rung for the
    first in line only; once they take her, for the second, who heard his place move up."""
    with live.extensions["ivr"].sessions.begin() as session:
        session.execute(update(Clinic).values(queue_max_wait=3600))
    staff_phone(live, STAFF, ["1"])
    first_queue, second_queue = two_callers_in_line(live, run_worker=True)
    assert (first_queue["result"], second_queue["result"]) == ("bridged", "bridged")
    places = [wait[0] for wait in waits_heard(second_queue) if wait and wait[0]]   # a pause says nothing
    assert places[0] == "There is one caller ahead of you."
    assert set(places) <= {"There is one caller ahead of you.", "You are next in line."}
    assert places == sorted(places, key=lambda said: said.startswith("You"))       # a place only moves up
    rung = [c["url"].rsplit("/queue/staff/", 1)[1] for c in store(live).calls() if "/queue/staff/" in c["url"]]
    with live.extensions["ivr"].sessions() as session:
        order = [e.id for e in session.scalars(select(Escalation).order_by(Escalation.started_at))]
        assert [e.queue_status for e in session.scalars(select(Escalation).order_by(Escalation.id))] == [
            "taken", "taken"]
    assert rung == [f"{order[0]}/0", f"{order[1]}/0"]   # one ring each, first caller first


def test_the_queue_of_a_caller_who_was_taken_is_deleted_at_the_carrier(live):
    with live.extensions["ivr"].sessions.begin() as session:
        session.execute(update(Clinic).values(queue_max_wait=3600))
    staff_phone(live, STAFF, ["1"])
    result = call_in(live, JANE, JANE_ASKS_FOR_A_PERSON)
    assert queue_turn(result)["result"] == "bridged"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and store(live).queue_sids():
        calling._work(live)
        time.sleep(0.1)
    assert store(live).queue_sids() == []


def test_with_lines_rung_together_the_first_staff_to_press_1_takes_the_caller(live):
    with live.extensions["ivr"].sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        clinic.ring_together, clinic.queue_max_wait = True, 3600
        session.add(StaffLine(clinic_id=clinic.id, position=1, phone=SECOND_LINE))
    staff_phone(live, STAFF, ["2"])
    staff_phone(live, SECOND_LINE, ["1"])
    result = call_in(live, JANE, JANE_ASKS_FOR_A_PERSON)
    assert queue_turn(result)["result"] == "bridged"
    staff = {c["to"]: c for c in result.transcript["staff_calls"]}
    assert set(staff) == {STAFF, SECOND_LINE}              # both rung in the same round
    assert (staff[STAFF]["pressed"], staff[SECOND_LINE]["pressed"]) == (["2"], ["1"])
    assert the_escalation(live).staff_phone == SECOND_LINE
