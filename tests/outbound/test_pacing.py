"""Pacing: the carrier account's calls per second across workers, a clinic's most calls in
progress, and clinics taking turns in the queue."""

import datetime as dt
import uuid

from sqlalchemy import select, update

from ivr.models import Appointment, Clinic, Location, Patient, Touch, utcnow
from outbound.jobs import place_touch_call
from outbound.pacing import CallPace
from outbound.planning import touches_to_queue


def test_the_accounts_rate_is_shared_by_every_worker(redis):
    account = f"AC{uuid.uuid4().hex}"  # this test's own window
    first, second = CallPace(redis, 3, account), CallPace(redis, 3, account)
    taken = [first.try_turn(), second.try_turn(), first.try_turn()]
    assert taken == [True, True, True]
    assert (first.try_turn(), second.try_turn()) == (False, False)  # the fourth in the same second waits
    assert CallPace(redis, 3, f"AC{uuid.uuid4().hex}").try_turn() is True  # another account is not held


def add_touch(session, clinic, phone) -> int:
    location = session.scalars(select(Location).where(Location.clinic_id == clinic.id)).first()
    patient = Patient(clinic_id=clinic.id, first_name="Ann", last_name="Lee", phone=phone)
    touch = Touch(appointment=Appointment(patient=patient, location=location, provider_name="Amara Patel",
                                          starts_at=utcnow() + dt.timedelta(days=1)),
                  step="reminder", channel="voice", due_at=utcnow())
    session.add(touch)
    session.flush()
    return touch.id


def test_a_clinic_at_its_most_calls_in_progress_holds_the_next_one_back(app, sessions, demo, dialer):
    with sessions.begin() as session:
        clinic = session.scalars(select(Clinic)).one()
        clinic.max_calls_in_progress = 1
        second = add_touch(session, clinic, "+12125550190")
    with app.app_context():
        assert place_touch_call(demo.touch_id) is not None
        before = utcnow()
        assert place_touch_call(second) is None
    with sessions() as session:
        held = session.get(Touch, second)
        assert (held.status, held.attempts, held.last_error) == ("planned", 0, "the clinic has 1 calls in progress")
        assert before + dt.timedelta(seconds=15) <= held.due_at <= utcnow() + dt.timedelta(seconds=15)
    # When the first call ends, the next may go.
    with sessions.begin() as session:
        session.execute(update(Touch).where(Touch.id == demo.touch_id).values(status="completed"))
        session.execute(update(Touch).where(Touch.id == second).values(due_at=utcnow()))
    with app.app_context():
        assert place_touch_call(second) is not None
    assert [r.to for r in dialer.requests] == [demo.patient_phone, "+12125550190"]


def test_clinics_take_turns_in_the_queue(sessions, demo):
    with sessions.begin() as session:
        first = session.scalars(select(Clinic)).one()
        other = Clinic(name="Harbor Clinic", phone="+12125550300", calls_from=dt.time(0), calls_until=dt.time(23, 59))
        session.add_all([other, Location(clinic=other, name="Harbor")])
        session.flush()
        a = [demo.touch_id] + [add_touch(session, first, f"+1212555020{i}") for i in range(3)]
        b = [add_touch(session, other, f"+1212555030{i}") for i in range(2)]
    with sessions() as session:
        order = [touch_id for touch_id, _ in touches_to_queue(session)]
    assert order == [a[0], b[0], a[1], b[1], a[2], a[3]]
