"""The caller queue through the webhooks: a caller asking for a person waits in a queue of their
own hearing their place and the expected wait; a job rings the staff lines in turn; staff who
take the caller dial that queue; pressing 1 while waiting keeps the place for a call back."""

import datetime as dt

from sqlalchemy import select, update

from ivr.models import Call, CallEvent, Clinic, Escalation, StaffLine, utcnow
from tests.support import call_sid, parse_twiml, race, spoken
from tests.twiml_schema import assert_valid

CLINIC_NUMBER = "+12125550100"
JANE, JANE_DOB = "+12125550143", "04121950"
STRANGER = "+12125550111"
STEP = "/twilio/voice/step"
WAIT = "/twilio/voice/queue/wait"
OFFER = "To hang up and get a call back as soon as someone is free, press 1."
STAFF_CHOICE = "Press 1 to take the call. Press 2 to pass."


def heard(response):
    assert response.status_code == 200, response.data
    assert_valid(response.data)
    return parse_twiml(response.data)


def asks_for_a_person(twilio, caller=JANE, dob=JANE_DOB, sid=None):
    """Ring, let the language offer pass, enter a date of birth, press 3 for a person: the verbs."""
    sid = sid or call_sid(7)
    heard(twilio.post("/twilio/voice/inbound", {"CallSid": sid, "From": caller, "To": CLINIC_NUMBER,
                                                "Direction": "inbound"}))
    heard(twilio.post(twilio.next_url(sid, "silence", STEP), {"CallSid": sid}))
    heard(twilio.post(twilio.next_url(sid, "answer", STEP), {"CallSid": sid, "Digits": dob}))
    return heard(twilio.post(twilio.next_url(sid, "answer", STEP), {"CallSid": sid, "Digits": "3"}))


def wait(twilio, sid=None, waited=0):
    sid = sid or call_sid(7)
    return heard(twilio.post(WAIT, {"CallSid": sid, "QueueTime": str(waited), "QueuePosition": "1",
                                    "CurrentQueueSize": "1", "AvgQueueTime": "0", "QueueSid": "QU" + "0" * 32}))


def escalation_of(sessions, sid=None):
    with sessions() as session:
        return session.scalars(select(Escalation).join(Call, Call.id == Escalation.call_id)
                               .where(Call.call_sid == (sid or call_sid(7)))).one()


def ring_staff(app):
    """The job that rings a staff line for the clinic's first caller (one run)."""
    from outbound.staff_ringing import ring_staff as job

    with app.app_context():
        with app.extensions["ivr"].sessions() as session:
            clinic_id = session.scalar(select(Clinic.id))
        return job(clinic_id)


def test_a_caller_asking_for_a_person_waits_in_a_queue_of_their_own(twilio, demo, sessions):
    verbs = asks_for_a_person(twilio)
    assert spoken(verbs) == ["Please hold while I connect you to our staff."]
    (enqueue,) = [v for v in verbs if v.name == "Enqueue"]
    assert enqueue.text == f"ivr-{call_sid(7)}"
    assert enqueue.attrs["waitUrl"].endswith(WAIT) and enqueue.attrs["waitUrlMethod"] == "POST"
    assert "/twilio/voice/queue/left?turn=" in enqueue.attrs["action"]
    escalation = escalation_of(sessions)
    assert (escalation.reason, escalation.queue_status, escalation.ring_line) == ("asked", "waiting", 0)


def test_the_wait_says_each_caller_their_place_and_offers_a_call_back(twilio, demo, sessions):
    asks_for_a_person(twilio)
    verbs = wait(twilio)
    assert spoken(verbs) == ["You are next in line.", OFFER]
    (gather,) = [v for v in verbs if v.name == "Gather"]
    assert (gather.attrs["numDigits"], gather.attrs["timeout"]) == ("1", "20")
    assert gather.attrs["action"].endswith("/twilio/voice/queue/key")
    assert [v.name for v in verbs] == ["Say", "Gather"]   # then the carrier asks again
    asks_for_a_person(twilio, caller=STRANGER, dob="01011990", sid=call_sid(9))
    assert spoken(wait(twilio, call_sid(9)))[0] == "There is one caller ahead of you."


def test_staff_are_rung_for_the_first_caller_only_and_then_for_the_next(app, twilio, demo, sessions, dialer):
    asks_for_a_person(twilio)
    asks_for_a_person(twilio, caller=STRANGER, dob="01011990", sid=call_sid(9))
    first, second = escalation_of(sessions).id, escalation_of(sessions, call_sid(9)).id
    staff = ring_staff(app)
    assert ring_staff(app) is None                         # the first caller's line rings already
    assert [r.url.rsplit("/queue/staff/", 1)[1] for r in dialer.requests] == [f"{first}/0"]
    whisper = heard(twilio.post(f"/twilio/voice/queue/staff/{first}/0", {"CallSid": staff}))
    (gather,) = [v for v in whisper if v.name == "Gather"]
    heard(twilio.post(gather.attrs["action"], {"CallSid": staff, "Digits": "1", "To": demo.staff_phone}))
    ring_staff(app)                                        # now the second caller is first in line
    assert [r.url.rsplit("/queue/staff/", 1)[1] for r in dialer.requests] == [f"{first}/0", f"{second}/0"]
    assert spoken(wait(twilio, call_sid(9)))[0] == "You are next in line."


def test_the_expected_wait_comes_from_the_clinics_recent_waits(twilio, demo, sessions):
    now = utcnow()
    with sessions.begin() as session:
        clinic_id = session.scalar(select(Clinic.id))
        for n, minutes in enumerate((3, 4, 9)):
            call = Call(call_sid=call_sid(30 + n), direction="inbound", flow="inbound", clinic_id=clinic_id,
                        status="completed", state={})
            session.add(call)
            session.flush()
            session.add(Escalation(call_id=call.id, clinic_id=clinic_id, reason="asked", verified=True,
                                   started_at=now - dt.timedelta(hours=1),
                                   answered_at=now - dt.timedelta(hours=1) + dt.timedelta(minutes=minutes),
                                   queue_status="taken", outcome="answered"))
    asks_for_a_person(twilio)
    assert spoken(wait(twilio)) == ["You are next in line.", "The wait should be about 4 minutes.", OFFER]
    asks_for_a_person(twilio, caller=STRANGER, dob="01011990", sid=call_sid(9))
    assert spoken(wait(twilio, call_sid(9)))[:2] == ["There is one caller ahead of you.",
                                                     "The wait should be about 8 minutes."]


def test_after_the_clinics_longest_wait_the_caller_leaves_the_queue(twilio, demo, sessions):
    asks_for_a_person(twilio)
    assert [v.name for v in wait(twilio, waited=299)] == ["Say", "Gather"]
    assert [v.name for v in wait(twilio, waited=300)] == ["Leave"]
    assert escalation_of(sessions).queue_status == "unanswered"
    bad = twilio.post(WAIT, {"CallSid": call_sid(7), "QueueTime": "soon"})
    assert bad.status_code == 400


def test_1_while_waiting_keeps_the_place_for_a_call_back_and_other_keys_wait_on(twilio, demo, sessions):
    asks_for_a_person(twilio)
    assert [v.name for v in heard(twilio.post("/twilio/voice/queue/key", {"CallSid": call_sid(7),
                                                                          "Digits": "5"}))] == []
    assert escalation_of(sessions).queue_status == "waiting"
    assert [v.name for v in heard(twilio.post("/twilio/voice/queue/key", {"CallSid": call_sid(7),
                                                                          "Digits": "1"}))] == ["Leave"]
    assert escalation_of(sessions).queue_status == "call_back"
    # The carrier reports the caller left the queue: the flow promises the call back.
    left = heard(twilio.post(f"/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "leave",
                                                                  "QueueTime": "40", "QueueSid": "QU" + "0" * 32}))
    assert spoken(left) == ["Thank you. We will call you back as soon as someone is free. Goodbye."]
    escalation = escalation_of(sessions)
    assert (escalation.callback_status, escalation.outcome) == ("planned", "call_back")


def test_a_caller_id_abroad_is_not_offered_a_call_back_in_the_queue(twilio, demo, sessions):
    asks_for_a_person(twilio, caller="+442071838750", dob="01011990")
    verbs = wait(twilio)
    assert spoken(verbs) == ["You are next in line."]
    assert [v.name for v in heard(twilio.post("/twilio/voice/queue/key", {"CallSid": call_sid(7),
                                                                          "Digits": "1"}))] == []


def test_staff_lines_are_rung_once_each_in_order_and_staff_hear_why_before_taking_the_caller(
        app, twilio, demo, sessions, dialer):
    with sessions.begin() as session:
        session.add(StaffLine(clinic_id=session.scalar(select(Clinic.id)), position=1, phone="+12125550198"))
    asks_for_a_person(twilio)
    escalation_id = escalation_of(sessions).id
    first = ring_staff(app)
    assert ring_staff(app) is None                             # a job that runs twice rings once
    assert [(r.to, r.machine_detection) for r in dialer.requests] == [(demo.staff_phone, False)]
    assert dialer.requests[0].url.endswith(f"/twilio/voice/queue/staff/{escalation_id}/0")
    # Staff on the first line pass; the end of their call rings the second line.
    staff = f"/twilio/voice/queue/staff/{escalation_id}/0"
    whisper = heard(twilio.post(staff, {"CallSid": first, "To": demo.staff_phone}))
    assert spoken(whisper) == ["A call from Jane. Their date of birth matched. They asked for a person.",
                               STAFF_CHOICE]
    (gather,) = [v for v in whisper if v.name == "Gather"]
    assert [v.name for v in heard(twilio.post(gather.attrs["action"], {"CallSid": first, "Digits": "2"}))] == [
        "Hangup"]
    assert twilio.post(f"/twilio/status/queue/{escalation_id}/0",
                       {"CallSid": first, "CallStatus": "completed"}).status_code == 204
    second = ring_staff(app)
    assert [r.to for r in dialer.requests] == [demo.staff_phone, "+12125550198"]
    # The second line takes the caller out of their queue; a replay of that choice takes nobody.
    whisper = heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/1", {"CallSid": second}))
    (gather,) = [v for v in whisper if v.name == "Gather"]
    taken = heard(twilio.post(gather.attrs["action"], {"CallSid": second, "Digits": "1", "To": "+12125550198"}))
    assert [(v.name, v.children[0].name, v.children[0].text) for v in taken] == [
        ("Dial", "Queue", f"ivr-{call_sid(7)}")]
    replay = heard(twilio.post(gather.attrs["action"], {"CallSid": second, "Digits": "1"}))
    assert spoken(replay) == ["This caller is no longer waiting. Thank you. Goodbye."]
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.outcome, escalation.staff_phone) == (
        "taken", "answered", "+12125550198")
    with sessions() as session:
        choices = session.scalars(select(CallEvent.detail).where(CallEvent.kind == "staff").order_by(CallEvent.id))
        assert list(choices) == [{"accepted": False}, {"accepted": True}]
        assert session.scalars(select(Call.outcome).where(Call.call_sid == call_sid(7))).one() == "transferred"
    # While staff were being put through the caller was not told to leave the queue.
    assert [v.name for v in wait(twilio, waited=30)] == ["Pause"]
    done = heard(twilio.post(f"/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "bridged",
                                                                  "QueueTime": "45"}))
    assert [v.name for v in done] == ["Hangup"]


def test_when_no_line_takes_the_caller_the_round_starts_again_until_the_longest_wait(
        app, twilio, demo, sessions, dialer):
    asks_for_a_person(twilio)
    escalation_id = escalation_of(sessions).id
    staff = ring_staff(app)
    twilio.post(f"/twilio/status/queue/{escalation_id}/0", {"CallSid": staff, "CallStatus": "no-answer"})
    twilio.post(f"/twilio/status/queue/{escalation_id}/0", {"CallSid": staff, "CallStatus": "no-answer"})  # again
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.ring_line, escalation.ring_call_sid) == ("waiting", 0, None)
    assert spoken(wait(twilio, waited=30))[0] == "You are next in line."     # still in line
    again = ring_staff(app)                                  # the next round, from the first line
    assert [r.to for r in dialer.requests] == [demo.staff_phone, demo.staff_phone] and again != staff
    assert [v.name for v in wait(twilio, waited=300)] == ["Leave"]
    assert escalation_of(sessions).queue_status == "unanswered"
    left = heard(twilio.post(f"/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "leave"}))
    assert spoken(left) == ["No one is free to take your call right now. To get a call back as soon as someone is "
                            "free, press 1. To leave a message, press 2."]
    # The ring still under way when the caller left takes nobody.
    assert spoken(heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/0", {"CallSid": again}))) == [
        "This caller is no longer waiting. Thank you. Goodbye."]


def test_a_caller_who_presses_1_then_hangs_up_is_still_called_back(twilio, demo, sessions):
    asks_for_a_person(twilio)
    heard(twilio.post("/twilio/voice/queue/key", {"CallSid": call_sid(7), "Digits": "1"}))
    twilio.post("/twilio/status", {"CallSid": call_sid(7), "CallStatus": "completed"})   # before the queue's report
    heard(twilio.post(f"/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "hangup"}))
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.callback_status, escalation.outcome) == (
        "call_back", "planned", "call_back")


def test_staff_who_took_a_caller_but_were_never_bridged_leave_them_a_call_back_offer(
        app, twilio, demo, sessions, dialer):
    asks_for_a_person(twilio)
    escalation_id = escalation_of(sessions).id
    staff = ring_staff(app)
    whisper = heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/0", {"CallSid": staff}))
    (gather,) = [v for v in whisper if v.name == "Gather"]
    taken = heard(twilio.post(gather.attrs["action"], {"CallSid": staff, "Digits": "1"}))
    assert taken[0].attrs["timeout"] == "10"
    assert [v.name for v in wait(twilio, waited=40)] == ["Pause"]     # being put through
    with sessions.begin() as session:   # staff hung up before the carrier bridged them, a minute ago
        session.execute(update(Escalation).where(Escalation.id == escalation_id)
                        .values(answered_at=utcnow() - dt.timedelta(minutes=1)))
    assert [v.name for v in wait(twilio, waited=100)] == ["Leave"]
    left = heard(twilio.post(f"/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "leave"}))
    assert spoken(left)[0].startswith("No one is free to take your call right now.")
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.answered_at, escalation.staff_phone) == ("unanswered", None, None)
    with sessions() as session:
        assert session.scalars(select(Call.outcome).where(Call.call_sid == call_sid(7))).one() is None


def test_a_caller_who_hangs_up_while_waiting_is_rung_for_no_more(app, twilio, demo, sessions, dialer):
    asks_for_a_person(twilio)
    escalation_id = escalation_of(sessions).id
    staff = ring_staff(app)
    twilio.post("/twilio/status", {"CallSid": call_sid(7), "CallStatus": "completed"})
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.outcome) == ("gone", "abandoned")
    # Staff who answer then hear that nobody is waiting, and cannot take anyone.
    assert spoken(heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/0", {"CallSid": staff}))) == [
        "This caller is no longer waiting. Thank you. Goodbye."]
    twilio.post(f"/twilio/status/queue/{escalation_id}/0", {"CallSid": staff, "CallStatus": "completed"})
    assert ring_staff(app) is None and len(dialer.requests) == 1


def test_two_workers_racing_to_ring_a_line_ring_it_once(app, twilio, demo, sessions, dialer):
    asks_for_a_person(twilio)
    results = race(app, lambda: ring_staff(app))
    assert len(results) == 2 and len(dialer.requests) == 1
    assert sum(r is not None for r in results) == 1


def test_queue_requests_with_bad_or_foreign_parameters_are_refused(twilio, demo, sessions):
    asks_for_a_person(twilio)
    unknown = twilio.post("/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "teleported"})
    assert unknown.status_code == 400
    foreign = twilio.post(WAIT, {"CallSid": call_sid(7), "QueueTime": "0", "DialCallStatus": "completed"})
    assert foreign.status_code == 400
    assert twilio.post("/twilio/voice/queue/staff/99999/0", {"CallSid": call_sid(8)}).status_code == 404


def test_a_clinic_with_the_queue_off_rings_staff_from_the_call(twilio, demo, sessions):
    with sessions.begin() as session:
        session.execute(update(Clinic).values(queue_callers=False))
    verbs = asks_for_a_person(twilio)
    assert [v.name for v in verbs] == ["Say", "Dial"]
    assert escalation_of(sessions).queue_status is None


def test_the_command_turns_the_queue_on_or_off_and_sets_the_longest_wait(runner, demo, sessions):
    with sessions() as session:
        clinic_id = session.scalar(select(Clinic.id))
    off = runner.invoke(args=["clinics", "queue", str(clinic_id), "off"])
    assert (off.exit_code, off.output.strip()) == (0, f"clinic {clinic_id}: caller queue off")
    on = runner.invoke(args=["clinics", "queue", str(clinic_id), "on", "--max-wait", "600", "--together"])
    assert (on.exit_code, on.output.strip()) == (
        0, f"clinic {clinic_id}: caller queue on, longest wait 600 s, staff lines rung together")
    with sessions() as session:
        clinic = session.get(Clinic, clinic_id)
        assert (clinic.queue_callers, clinic.queue_max_wait, clinic.ring_together) == (True, 600, True)
    assert runner.invoke(args=["clinics", "list"]).output.rstrip().endswith("queue on (600 s, lines together)")
    in_order = runner.invoke(args=["clinics", "queue", str(clinic_id), "on", "--in-order"])
    assert in_order.output.strip().endswith("longest wait 600 s, staff lines rung in order")
    missing = runner.invoke(args=["clinics", "queue", "999", "on"])
    assert (missing.exit_code, missing.output.strip()) == (1, "Error: no clinic with id 999")
    too_short = runner.invoke(args=["clinics", "queue", str(clinic_id), "on", "--max-wait", "5"])
    assert too_short.exit_code == 2 and "5 is not in the range 30<=x<=3600" in too_short.output


def test_reconcile_rings_staff_again_for_a_waiting_caller_whose_job_was_lost(app, twilio, demo, sessions):
    from outbound.queueing import outbound_queue
    from outbound.reconciler import reconcile_all

    asks_for_a_person(twilio)
    redis = app.extensions["ivr"].redis
    redis.flushall()                         # Redis lost the job that would ring the first line
    report = reconcile_all(app.extensions["ivr"], utcnow())
    assert report.rings == 1 and "staff rung again for 1 caller(s) waiting in the queue" in report.summary()
    with sessions() as session:
        clinic_id = session.scalar(select(Clinic.id))
    assert outbound_queue(redis).fetch_job(f"ring-staff-{clinic_id}") is not None
    assert reconcile_all(app.extensions["ivr"], utcnow()).rings == 0     # queued once


def test_a_caller_whose_end_was_never_reported_stops_counting_in_line(app, twilio, demo, sessions):
    from outbound.reconciler import reconcile_all

    asks_for_a_person(twilio)
    with sessions.begin() as session:   # their final status callback was lost an hour ago
        session.execute(update(Escalation).values(started_at=utcnow() - dt.timedelta(hours=1)))
    asks_for_a_person(twilio, caller=STRANGER, dob="01011990", sid=call_sid(9))
    assert spoken(wait(twilio, call_sid(9)))[0] == "You are next in line."
    reconcile_all(app.extensions["ivr"], utcnow())
    assert escalation_of(sessions).queue_status == "gone"
    assert escalation_of(sessions, call_sid(9)).queue_status == "waiting"


def test_a_queue_the_caller_left_is_deleted_at_the_carrier(app, twilio, demo, sessions, dialer):
    from outbound.queueing import outbound_queue
    from outbound.staff_ringing import delete_queue

    asks_for_a_person(twilio)
    queue_sid = "QU" + "ab" * 16
    heard(twilio.post("/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "hangup",
                                                         "QueueSid": queue_sid}))
    job = outbound_queue(app.extensions["ivr"].redis).fetch_job(f"delete-queue-{queue_sid}")
    assert job is not None and job.args == (queue_sid,)
    with app.app_context():
        assert delete_queue(queue_sid) is True
    assert dialer.deleted_queues == [queue_sid]


def test_lines_rung_together_ring_at_once_and_the_first_to_press_1_takes_the_caller(
        app, twilio, demo, sessions, dialer):
    with sessions.begin() as session:
        session.execute(update(Clinic).values(ring_together=True))
        session.add(StaffLine(clinic_id=session.scalar(select(Clinic.id)), position=1, phone="+12125550198"))
    asks_for_a_person(twilio)
    escalation_id = escalation_of(sessions).id
    first = ring_staff(app)
    assert ring_staff(app) is None                          # the round is under way
    assert [(r.to, r.url.rsplit("/queue/staff/", 1)[1]) for r in dialer.requests] == [
        (demo.staff_phone, f"{escalation_id}/0"), ("+12125550198", f"{escalation_id}/1")]
    second = f"CA{2:032x}"
    # The staff phone does not answer: that ends nothing; the other line takes the caller.
    twilio.post(f"/twilio/status/queue/{escalation_id}/0", {"CallSid": first, "CallStatus": "no-answer"})
    assert ring_staff(app) is None and len(dialer.requests) == 2
    whisper = heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/1", {"CallSid": second}))
    assert spoken(whisper)[0] == "A call from Jane. Their date of birth matched. They asked for a person."
    (gather,) = [v for v in whisper if v.name == "Gather"]
    taken = heard(twilio.post(gather.attrs["action"], {"CallSid": second, "Digits": "1", "To": "+12125550198"}))
    assert [v.children[0].text for v in taken] == [f"ivr-{call_sid(7)}"]
    late = heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/0/choice", {"CallSid": first,
                                                                                     "Digits": "1"}))
    assert spoken(late) == ["This caller is no longer waiting. Thank you. Goodbye."]
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.staff_phone, escalation.ring_line) == ("taken", "+12125550198", 1)


def test_lines_rung_together_are_rung_again_after_the_round(app, twilio, demo, sessions, dialer):
    with sessions.begin() as session:
        session.execute(update(Clinic).values(ring_together=True))
    asks_for_a_person(twilio)
    ring_staff(app)
    with sessions.begin() as session:   # the round began a while ago and nobody took the caller
        session.execute(update(Escalation).values(ring_at=utcnow() - dt.timedelta(seconds=91)))
    assert ring_staff(app) is not None and len(dialer.requests) == 2


def test_a_call_back_chosen_in_the_queue_is_not_planned_again_when_the_queue_reports_it(
        app, twilio, demo, sessions, dialer):
    """The worker may claim the call back before the carrier reports that the caller left."""
    from outbound.callbacks import call_back

    asks_for_a_person(twilio)
    heard(twilio.post("/twilio/voice/queue/key", {"CallSid": call_sid(7), "Digits": "1"}))
    escalation_id = escalation_of(sessions).id
    with app.app_context():
        assert call_back(escalation_id) is not None          # staff are being rung
    heard(twilio.post("/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "leave"}))
    assert escalation_of(sessions).callback_status == "dialing"
    with app.app_context():
        assert call_back(escalation_id) is None and len(dialer.requests) == 1


def test_a_caller_who_hangs_up_as_staff_take_them_is_not_counted_as_answered(app, twilio, demo, sessions, dialer):
    asks_for_a_person(twilio)
    escalation_id = escalation_of(sessions).id
    staff = ring_staff(app)
    heard(twilio.post(f"/twilio/voice/queue/staff/{escalation_id}/0/choice", {"CallSid": staff, "Digits": "1"}))
    assert escalation_of(sessions).outcome == "answered"
    heard(twilio.post("/twilio/voice/queue/left?turn=4", {"CallSid": call_sid(7), "QueueResult": "hangup"}))
    escalation = escalation_of(sessions)
    assert (escalation.queue_status, escalation.outcome, escalation.staff_phone) == ("gone", "abandoned", None)
    with sessions() as session:
        assert session.scalars(select(Call.outcome).where(Call.call_sid == call_sid(7))).one() == "hung_up"


def test_a_line_the_carrier_refuses_passes_the_ring_to_the_next_line_at_once(
        app, twilio, demo, sessions, dialer, monkeypatch):
    from ivr.errors import PermanentDialError

    with sessions.begin() as session:
        session.add(StaffLine(clinic_id=session.scalar(select(Clinic.id)), position=1, phone="+12125550198"))
    asks_for_a_person(twilio)
    placed = dialer.place_call

    def refuse_the_staff_phone(request):
        if request.to == demo.staff_phone:
            raise PermanentDialError("carrier refused the call: HTTP 400, code 21211")
        return placed(request)

    monkeypatch.setattr(dialer, "place_call", refuse_the_staff_phone)
    assert ring_staff(app) is not None
    assert [r.to for r in dialer.requests] == ["+12125550198"]
    assert escalation_of(sessions).ring_line == 1


def test_the_ring_job_goes_ahead_of_campaign_work_and_a_failed_one_does_not_block_the_next(app, demo):
    from rq.job import JobStatus

    from outbound.queueing import outbound_queue
    from outbound.staff_ringing import enqueue_ring

    queue = outbound_queue(app.extensions["ivr"].redis)
    queue.enqueue("outbound.jobs.place_call", 999999, job_id="campaign-work")
    assert enqueue_ring(queue, 1) is True and queue.job_ids[0] == "ring-staff-1"
    assert enqueue_ring(queue, 1) is False                     # queued once
    queue.fetch_job("ring-staff-1").set_status(JobStatus.FAILED)
    assert enqueue_ring(queue, 1) is True                      # a failed one is cleared, not waited on
