"""Refill prompts: a campaign's refill steps planned around each prescription's refill due day
(once per prescription, due day and step), the medication named only after identity, a refill
asked for by call or text becoming a task for the pharmacy team, 0 reaching the pharmacy, and the
checks made again when the prompt is due (refilled, stopped, asked for already)."""

import datetime as dt

import pytest
from sqlalchemy import select, update

from ivr.models import Message, Patient, Prescription, Task, Touch, utcnow
from outbound import campaigns
from outbound.jobs import place_touch_call
from tests.support import call_sid, parse_twiml, spoken

PHARMACY = "+12125550177"


def metformin(sessions) -> Prescription:
    with sessions() as session:
        return session.scalars(select(Prescription).where(Prescription.medication == "metformin")).one()


def refill_touches(sessions, prescription_id=None) -> list[Touch]:
    with sessions() as session:
        query = select(Touch).where(Touch.prescription_id.is_not(None)).order_by(Touch.id)
        if prescription_id is not None:
            query = query.where(Touch.prescription_id == prescription_id)
        return list(session.scalars(query))


def plan(sessions, hours=72, now=None) -> campaigns.CampaignPlan:
    now = now or utcnow()
    with sessions.begin() as session:
        return campaigns.plan_campaigns(session, now, now + dt.timedelta(hours=hours), write=True)


def refill_tasks(sessions):
    with sessions() as session:
        return [(t.kind, t.prescription_id, t.patient_id, t.status)
                for t in session.scalars(select(Task).where(Task.kind == "refill_request"))]


def test_the_demo_plans_one_prompt_for_the_refill_falling_due_and_never_twice(sessions, demo):
    """The demo's step goes 3 days before the day a prescription runs out: Jane's metformin (due
    in 3 days) now; her lisinopril (20 days) and Robert's atorvastatin (10 days) later."""
    before = utcnow()
    planned = plan(sessions)
    drug = metformin(sessions)
    (touch,) = refill_touches(sessions)
    assert (touch.prescription_id, touch.refill_due_on, touch.appointment_id, touch.patient_id) == (
        drug.id, drug.refill_due_on, None, drug.patient_id)
    assert (touch.step, touch.flow, touch.channel, touch.status) == ("refill", "refill", "voice", "planned")
    assert before <= touch.due_at <= utcnow()
    refills = lambda plan: sum(n for (_, _, step), n in plan.planned.items() if step == "refill")  # noqa: E731
    assert refills(planned) == 1
    assert plan(sessions).written == 0
    assert len(refill_touches(sessions)) == 1
    # A fortnight on, Robert's atorvastatin comes due too; the metformin has its prompt already.
    later = plan(sessions, hours=24 * 14)
    assert [t.prescription_id for t in refill_touches(sessions)] == [drug.id, drug.id + 2]
    assert refills(later) == 1   # the atorvastatin's; the lisinopril is 20 days out


def test_a_prescription_without_refills_left_is_held_back_and_shown(runner, sessions, demo):
    with sessions.begin() as session:
        session.execute(update(Prescription).values(refills_left=0))
    result = runner.invoke(args=["campaign", "plan"])  # the next 7 days: metformin's and atorvastatin's prompts
    assert "  refill: 2 no refills left (the prescriber must renew it)" in result.output.splitlines()
    plan(sessions)
    assert refill_touches(sessions) == []


def answer(twilio, touch_id, sid, *keys, **params):
    """Answer the touch's call, then press each key; the TwiML after each, spoken."""
    said = [spoken(parse_twiml(twilio.post(f"/twilio/voice/outbound/{touch_id}", {"CallSid": sid, **params}).data))]
    for key in keys:
        response = twilio.post(twilio.next_url(sid, "answer", ""), {"CallSid": sid, "Digits": key})
        said.append(parse_twiml(response.data))
    return said


def refill_call(sessions) -> int:
    plan(sessions)
    return refill_touches(sessions)[0].id


def test_the_call_names_the_medication_only_after_identity_and_a_1_makes_the_task_and_a_text(
        twilio, sessions, demo):
    touch_id, drug = refill_call(sessions), metformin(sessions)
    greeting, offer, done = answer(twilio, touch_id, call_sid(), "1", "1")
    assert greeting == ["Hello. This is Riverside Family Clinic calling.",
                        "If you are Jane, press 1. If Jane is not available, press 2."]
    assert spoken(offer) == ["Your prescription for metformin is due for a refill.",
                             "To ask for a refill, press 1. To talk to the pharmacy, press 0. If you do not need "
                             "it now, press 2. To hear this again, press 9."]
    assert spoken(done) == ["Thank you. We have your refill request. Our pharmacy team will look at it within one "
                            "business day, and will call you if they have a question. Goodbye."]
    assert refill_tasks(sessions) == [("refill_request", drug.id, drug.patient_id, "open")]
    with sessions() as session:
        text = session.scalars(select(Message).where(Message.direction == "outbound")).one()
    assert (text.to_number, text.kind, text.status, text.body) == (
        demo.patient_phone, "confirmation", "planned",
        "Thank you. We have your refill request. Our pharmacy team will look at it within one business day. "
        "Riverside Family Clinic")
    assert "metformin" not in text.body


def test_0_puts_the_patient_through_to_the_prescriptions_pharmacy(twilio, sessions, demo):
    touch_id = refill_call(sessions)
    *_, transfer = answer(twilio, touch_id, call_sid(), "1", "0")
    assert [v.name for v in transfer] == ["Say", "Dial"]
    assert spoken(transfer) == ["Please hold while I connect you to the pharmacy."]
    assert [(n.name, n.text) for n in transfer[1].children] == [("Number", PHARMACY)]


def test_without_a_pharmacy_line_0_reaches_the_clinics_staff(twilio, sessions, demo):
    with sessions.begin() as session:
        session.execute(update(Prescription).values(pharmacy_phone=None))
    *_, transfer = answer(twilio, refill_call(sessions), call_sid(), "1", "0")
    assert [(n.name, n.text) for n in transfer[1].children] == [("Number", demo.staff_phone)]


def test_an_answering_machine_hears_no_medication_and_no_menu(twilio, sessions, demo):
    (said,) = answer(twilio, refill_call(sessions), call_sid(), AnsweredBy="machine_end_beep")
    assert said == ["Hello. This is Riverside Family Clinic calling with a message. Please call us back at "
                    "2 1 2, 5 5 5, 0 1 0 0. Thank you."]


def test_a_landline_gets_no_confirmation_text_and_the_record_says_why(twilio, sessions, demo):
    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.first_name == "Jane").values(phone="+442071838750"))
    answer(twilio, refill_call(sessions), call_sid(), "1", "1")
    with sessions() as session:
        assert session.scalars(select(Message)).all() == []
        from ivr.models import CallEvent

        changes = [c for e in session.scalars(select(CallEvent).where(CallEvent.kind == "step"))
                   for c in e.detail.get("changes", ())]
    assert {"text_not_sent": "not a mobile number"} in changes
    assert len(refill_tasks(sessions)) == 1


def dispatch(app, sessions, touch_id):
    with app.app_context():
        return place_touch_call(touch_id)


@pytest.mark.parametrize("change,reason", [
    ({"refill_due_on": dt.date(2030, 1, 1)}, "the prescription was refilled (its due date moved)"),
    ({"active": False}, "the prescription was stopped"),
    ({"refills_left": 0}, "no refills left (the prescriber must renew it)"),
])
def test_a_prompt_no_longer_wanted_when_due_is_skipped(app, sessions, demo, dialer, change, reason):
    touch_id = refill_call(sessions)
    with sessions.begin() as session:
        session.execute(update(Prescription).where(Prescription.medication == "metformin").values(**change))
    assert dispatch(app, sessions, touch_id) is None
    (touch,) = refill_touches(sessions)
    assert (touch.status, touch.last_error, dialer.requests) == ("skipped", reason, [])


def test_a_refill_asked_for_this_fill_skips_the_prompts_even_once_the_task_is_closed(
        app, runner, sessions, demo, dialer):
    """(The inbound line's refill choice: tests/ivr/test_inbound.py.)"""
    from ivr import tasks

    touch_id, drug = refill_call(sessions), metformin(sessions)
    with sessions.begin() as session:
        task = tasks.open_task(session.connection(), kind="refill_request", due=utcnow(), clinic_id=None,
                               patient_id=drug.patient_id, prescription_id=drug.id)
    (touch,) = refill_touches(sessions)
    assert (touch.status, touch.last_error) == ("skipped", "refill requested")
    # A later step of the same fill, planned after the pharmacy team closed the task without
    # recording the fill, still finds the request and asks nobody again.
    assert runner.invoke(args=["tasks", "done", str(task)]).exit_code == 0
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == touch_id).values(status="planned"))
    assert dispatch(app, sessions, touch_id) is None
    assert refill_touches(sessions)[0].last_error == "a refill was asked for already"
    assert dialer.requests == []


def test_a_refill_prompt_leaves_other_clinics_lone_reminders_alone(sessions, demo):
    """A clinic that never set up a campaign gets one reminder per visit, whatever refill prompts
    other clinics' campaigns plan."""
    from ivr.models import Appointment, Clinic, Location
    from outbound.planning import plan_reminders

    refill_call(sessions)
    with sessions.begin() as session:
        other = Clinic(name="Lakeside", phone="+12125550300", calls_from=dt.time(0), calls_until=dt.time(23, 59))
        session.add(Appointment(patient=Patient(clinic=other, first_name="Ann", last_name="Lee", phone="+12125550144"),
                                location=Location(clinic=other, name="Lakeside"), provider_name="Kim",
                                starts_at=utcnow() + dt.timedelta(days=1)))
        session.flush()
        other_id = other.id
    with sessions.begin() as session:
        assert len(plan_reminders(session, utcnow(), utcnow() + dt.timedelta(days=3), clinic_id=other_id)) == 1


def test_an_appointment_handed_to_another_patient_takes_its_touch_along(app, sessions, demo, dialer):
    """Staff give Jane's slot to Robert before her reminder goes: the reminder rings Robert and
    names Robert, never Jane (nor Jane Robert's visit)."""
    from ivr.calls import touch_context
    from ivr.models import Appointment

    with sessions.begin() as session:
        robert = session.scalars(select(Patient).where(Patient.first_name == "Robert")).one()
        session.get(Appointment, demo.appointment_id).patient_id = robert.id
        robert_phone = robert.phone
    with sessions() as session:
        _flow, context = touch_context(session, demo.touch_id)
        assert context.values["first_name"] == "Robert"
    assert dispatch(app, sessions, demo.touch_id) is not None
    assert [r.to for r in dialer.requests] == [robert_phone]


def test_by_text_the_prompt_names_no_medication_and_a_1_makes_the_task(app, twilio, sessions, demo, messenger):
    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.first_name == "Jane").values(preferred_channel="sms"))
    touch_id, drug = refill_call(sessions), metformin(sessions)
    assert refill_touches(sessions)[0].flow == "text_refill"
    dispatch(app, sessions, touch_id)
    with sessions() as session:
        (text,) = session.scalars(select(Message).where(Message.direction == "outbound", Message.kind == "refill"))
    assert text.body == ("Riverside Family Clinic: a prescription of yours is due for a refill. Reply 1 to ask for "
                         "it, or call us at (212) 555-0100.")
    reply = twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + "1" * 32, "From": demo.patient_phone,
                                                "To": "+12125550100", "Body": "1"})
    assert reply.status_code == 200
    assert refill_tasks(sessions) == [("refill_request", drug.id, drug.patient_id, "open")]


def test_a_reply_only_one_waiting_question_can_take_answers_that_one(app, twilio, sessions, demo, messenger):
    """Jane has a reminder text and a refill text waiting: C can only confirm the visit, and the
    word for a refill only asks for one; a bare 1 could mean either, so a person reads it."""
    from ivr.models import Appointment

    with sessions.begin() as session:
        session.execute(update(Patient).where(Patient.first_name == "Jane").values(preferred_channel="sms"))
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(channel="sms", flow="text_reminder"))
    dispatch(app, sessions, demo.touch_id)
    dispatch(app, sessions, refill_call(sessions))

    def text(body, n):
        return twilio.post("/twilio/sms/inbound", {"MessageSid": f"SM{n:032x}", "From": demo.patient_phone,
                                                   "To": "+12125550100", "Body": body})

    text("1", 1)
    with sessions() as session:
        assert [t.kind for t in session.scalars(select(Task))] == ["unmatched_text"]
    # X asks the reminder's cancel check, which takes only C or X: a 1 then is not the refill's.
    text("X", 2)
    text("1", 3)
    assert refill_tasks(sessions) == []
    text("C", 4)   # keeps the visit
    text("C", 5)   # and confirms it
    text("refill", 6)
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).status == "confirmed"
    assert [kind for kind, *_ in refill_tasks(sessions)] == ["refill_request"]


def test_a_fill_recorded_skips_the_waiting_prompt_and_the_next_fill_is_prompted_again(runner, sessions, demo):
    refill_call(sessions)
    drug = metformin(sessions)
    next_due = drug.refill_due_on + dt.timedelta(days=30)
    result = runner.invoke(args=["prescriptions", "refilled", str(drug.id), "--next-due", next_due.isoformat()])
    assert result.output.strip() == (f"prescription {drug.id}: metformin, due {next_due}, 1 refill(s) left, "
                                     f"Riverside Pharmacy ({PHARMACY}); 1 waiting prompt(s) skipped")
    plan(sessions, hours=24 * 31)
    cycles = [(t.refill_due_on, t.status) for t in refill_touches(sessions, drug.id)]
    assert cycles == [(drug.refill_due_on, "skipped"), (next_due, "planned")]


def test_prescription_commands_and_their_mistakes(runner, sessions, demo):
    with sessions() as session:
        robert = session.scalars(select(Patient).where(Patient.first_name == "Robert")).one().id
    added = runner.invoke(args=["prescriptions", "add", str(robert), "insulin", "--due", "2027-01-05",
                                "--refills", "3", "--pharmacy", "Main Pharmacy", "--pharmacy-phone", "+12125550166"])
    assert added.exit_code == 0, added.output
    new_id = int(added.output.split()[1])
    assert added.output.strip() == (f"prescription {new_id} for patient {robert}: insulin, due 2027-01-05, "
                                    "3 refill(s) left, Main Pharmacy (+12125550166)")
    listed = runner.invoke(args=["prescriptions", "list", "--patient", str(robert)]).output.splitlines()
    assert len(listed) == 2 and "atorvastatin" in listed[0]   # the soonest due first
    assert listed[1] == (f"{new_id}  patient {robert}  insulin, due 2027-01-05, 3 refill(s) left, "
                         "Main Pharmacy (+12125550166)")
    stopped = runner.invoke(args=["prescriptions", "stop", str(new_id)])
    assert stopped.output.strip() == f"prescription {new_id}: stopped; 0 waiting prompt(s) skipped"
    for args, message in ((["add", "999999", "x"], "Error: no patient with id 999999"),
                          (["add", str(robert), "x", "--pharmacy-phone", "555"], "is not a phone number"),
                          (["refilled", "999999", "--next-due", "2027-01-01"], "Error: no prescription with id 999999"),
                          (["refilled", str(new_id), "--next-due", "2026-01-01"], "the next fill must be due after"),
                          (["stop", "999999"], "Error: no prescription with id 999999")):
        result = runner.invoke(args=["prescriptions", *args])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output


def test_a_refill_step_belongs_to_the_campaign_for_every_type(runner, sessions, demo):
    typed = runner.invoke(args=["campaign", "add", "1", "New patients", "--type", "new patient"])
    campaign_id = typed.output.split()[1]
    result = runner.invoke(args=["campaign", "step", campaign_id, "refill", "--at", "-3d", "--refill"])
    assert result.exit_code == 1 and "refill steps belong to the clinic's campaign for every appointment type" in (
        result.output)
    far = runner.invoke(args=["campaign", "step", "1", "early", "--at", "-40d", "--refill"])
    assert far.exit_code == 2 and "at most 30 days before the refill's due day" in far.output
    both = runner.invoke(args=["campaign", "step", "1", "x", "--at", "+1d", "--refill", "--no-show"])
    assert both.exit_code == 2 and "either --no-show or --refill" in both.output
    ok = runner.invoke(args=["campaign", "step", "1", "due-day", "--at", "0m", "--refill", "--channel", "sms"])
    assert ok.output.strip() == "campaign 1: step 'due-day' added: +0m from a refill's due day, a text, for everyone"


def test_a_request_for_one_fill_does_not_silence_the_next_fills_prompts(app, runner, sessions, demo, dialer):
    """Asked for, then filled the same day with a 30-day supply: the next fill is prompted."""
    from ivr import tasks

    refill_call(sessions)
    drug = metformin(sessions)
    with sessions.begin() as session:
        tasks.open_task(session.connection(), kind="refill_request", due=utcnow(), clinic_id=None,
                        patient_id=drug.patient_id, prescription_id=drug.id)
    next_due = utcnow().date() + dt.timedelta(days=30)
    assert runner.invoke(args=["prescriptions", "refilled", str(drug.id), "--next-due", next_due.isoformat()]
                         ).exit_code == 0
    # The -3d prompt is due at 9:00 in New York three days before, whatever the hour is now:
    # a day's horizon from now + 27 days reaches it (a step already due is planned to go now).
    plan(sessions, now=utcnow() + dt.timedelta(days=27, minutes=1), hours=24)
    (_first, second) = refill_touches(sessions, drug.id)
    assert second.refill_due_on == next_due
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == second.id).values(due_at=utcnow()))
    assert dispatch(app, sessions, second.id) is not None


def test_a_call_whose_visit_was_handed_to_another_patient_tells_nothing_of_it(twilio, sessions, demo):
    """Jane answers her reminder; staff give the slot to Robert before she says who she is: her
    1 hears that the appointment changed, and neither Robert's name nor his visit."""
    from ivr.models import Appointment

    sid = call_sid()
    greeting = spoken(parse_twiml(twilio.post(f"/twilio/voice/outbound/{demo.touch_id}", {"CallSid": sid}).data))
    assert greeting[1].startswith("If you are Jane")
    with sessions.begin() as session:
        robert = session.scalars(select(Patient).where(Patient.first_name == "Robert")).one()
        session.get(Appointment, demo.appointment_id).patient_id = robert.id
    said = spoken(parse_twiml(twilio.post(twilio.next_url(sid, "answer", ""), {"CallSid": sid, "Digits": "1"}).data))
    assert said == ["Our office just changed this appointment, so I cannot take your answer now. Please call us "
                    "at 2 1 2, 5 5 5, 0 1 0 0. Goodbye."]
    with sessions() as session:
        assert session.get(Appointment, demo.appointment_id).status == "booked"


def test_a_text_whose_visit_was_handed_to_another_patient_answers_nothing_of_it(app, twilio, sessions, demo, messenger):
    from ivr.models import Appointment, Clinic

    with sessions.begin() as session:
        session.execute(update(Clinic).values(sms_private=True))
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(channel="sms", flow="text_reminder"))
    dispatch(app, sessions, demo.touch_id)
    with sessions.begin() as session:
        robert = session.scalars(select(Patient).where(Patient.first_name == "Robert")).one()
        session.get(Appointment, demo.appointment_id).patient_id = robert.id
    twilio.post("/twilio/sms/inbound", {"MessageSid": "SM" + "3" * 32, "From": demo.patient_phone,
                                        "To": "+12125550100", "Body": "1"})
    with sessions() as session:
        bodies = [m.body for m in session.scalars(select(Message).where(Message.direction == "outbound")
                                                  .order_by(Message.id))]
    assert bodies[-1] == "Our office just changed this appointment. Please call us at (212) 555-0100. Riverside Family Clinic"
    assert not any("Robert" in body for body in bodies)


def test_a_patient_put_through_to_the_pharmacy_who_hangs_up_there_is_recorded_so(twilio, sessions, demo):
    from ivr.models import Call

    sid = call_sid()
    answer(twilio, refill_call(sessions), sid, "1", "0")
    twilio.post(f"/twilio/status/outbound/{refill_touches(sessions)[0].id}", {"CallSid": sid, "CallStatus": "completed"})
    with sessions() as session:
        assert session.scalars(select(Call.outcome).where(Call.call_sid == sid)).one() == "to_pharmacy"
