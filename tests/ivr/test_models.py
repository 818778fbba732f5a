"""The schema: migrations match the models, the audit trail is append-only, times stay UTC."""

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ivr.models import (Appointment, AuditTrailIsAppendOnly, Base, Call, CallEvent, Touch)


def test_migrations_produce_exactly_the_models_schema(app):
    engine = app.extensions["ivr"].engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_call_events_cannot_be_changed_or_deleted(sessions, demo):
    with sessions.begin() as session:
        call = Call(call_sid="CA" + "1" * 32, direction="outbound-api", flow="reminder", state={})
        session.add(CallEvent(call=call, kind="input", detail={"digits": "1"}))
    with pytest.raises(AuditTrailIsAppendOnly):
        with sessions.begin() as session:
            session.scalars(select(CallEvent)).one().kind = "decision"
    with pytest.raises(AuditTrailIsAppendOnly):
        with sessions.begin() as session:
            session.delete(session.scalars(select(CallEvent)).one())


def test_one_touch_per_appointment_and_step(sessions, demo):
    with pytest.raises(IntegrityError):
        with sessions.begin() as session:
            session.add(Touch(appointment_id=demo.appointment_id, step="reminder",
                              due_at=dt.datetime.now(dt.timezone.utc)))


def test_a_touch_is_about_an_appointment_or_a_prescription_never_both_nor_neither(sessions, demo):
    from ivr.models import Prescription

    due = dt.datetime.now(dt.timezone.utc)
    with sessions.begin() as session:
        appointment = session.get(Appointment, demo.appointment_id)
        prescription = Prescription(patient_id=appointment.patient_id, medication="metformin",
                                    refill_due_on=dt.date(2026, 12, 10))
        session.add(prescription)
        session.flush()
        refill = Touch(prescription_id=prescription.id, refill_due_on=prescription.refill_due_on, step="refill",
                       due_at=due)
        session.add(refill)
        session.flush()
        assert refill.patient_id == appointment.patient_id   # its prescription's patient
        prescription_id, patient_id = prescription.id, appointment.patient_id
    for subject in ({}, {"appointment_id": demo.appointment_id, "prescription_id": prescription_id,
                         "refill_due_on": dt.date(2026, 12, 10)}, {"prescription_id": prescription_id},
                    {"appointment_id": demo.appointment_id, "refill_due_on": dt.date(2026, 12, 10)}):
        with pytest.raises(IntegrityError):
            with sessions.begin() as session:
                session.add(Touch(patient_id=patient_id, step="other", due_at=due, **subject))
    with pytest.raises(IntegrityError):  # one prompt per prescription, due day and step
        with sessions.begin() as session:
            session.add(Touch(prescription_id=prescription_id, refill_due_on=dt.date(2026, 12, 10), step="refill",
                              due_at=due))
    with sessions.begin() as session:  # the next fill is a subject of its own
        session.add(Touch(prescription_id=prescription_id, refill_due_on=dt.date(2027, 1, 9), step="refill",
                          due_at=due))


def test_datetimes_come_back_aware_in_utc(sessions, demo):
    moment = dt.datetime(2026, 3, 3, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with sessions.begin() as session:
        session.get(Appointment, demo.appointment_id).starts_at = moment
    with sessions() as session:
        stored = session.get(Appointment, demo.appointment_id).starts_at
    assert stored == moment and stored.tzinfo == dt.timezone.utc and stored.hour == 19


def test_naive_datetimes_are_refused(sessions, demo):
    with pytest.raises(Exception, match="naive datetime"):
        with sessions.begin() as session:
            session.get(Appointment, demo.appointment_id).starts_at = dt.datetime(2026, 3, 3, 9)


def test_a_savepoint_does_not_commit_on_its_own(sessions, demo):
    """pysqlite's deferred BEGIN once made a released SAVEPOINT commit by itself."""
    with pytest.raises(RuntimeError):
        with sessions.begin() as session:
            with session.begin_nested():
                session.add(Call(call_sid="CA" + "2" * 32, direction="inbound", flow="reminder", state={}))
            raise RuntimeError("roll back the whole transaction")
    with sessions() as session:
        assert session.scalars(select(Call)).all() == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_a_database_with_data_keeps_it_and_fills_new_columns(backend, tmp_path, request):
    """From the first schema, with rows in every table, up to the latest: nothing is lost,
    existing calls get their clinic, touches their flow, clinics voice answers off."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from ivr.cli import alembic_config

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    else:
        url = _fresh_postgres_database(request)
    command.upgrade(alembic_config(url), "0001")
    engine = create_engine(url)
    with engine.begin() as db:
        for statement in (
            "INSERT INTO clinic (id, name, timezone, phone, language) VALUES (7, 'C', 'UTC', '+12125550100', 'en')",
            "INSERT INTO location (id, clinic_id, name) VALUES (1, 7, 'L')",
            "INSERT INTO patient (id, clinic_id, first_name, last_name, phone, language, preferred_channel) "
            "VALUES (1, 7, 'A', 'B', '+12125550143', 'en', 'voice')",
            "INSERT INTO appointment (id, patient_id, location_id, provider_name, starts_at, status) "
            "VALUES (1, 1, 1, 'P', '2026-12-01 10:00:00', 'booked')",
            "INSERT INTO touch (id, appointment_id, step, channel, due_at, status, attempts, updated_at) "
            "VALUES (1, 1, 'reminder', 'voice', '2026-11-30 10:00:00', 'placed', 1, '2026-11-30 10:00:00')",
            "INSERT INTO touch (id, appointment_id, step, channel, due_at, status, attempts, updated_at) "
            "VALUES (2, 1, 'test-call-1', 'voice', '2026-11-30 10:00:00', 'placed', 1, '2026-11-30 10:00:00')",
            "INSERT INTO \"call\" (id, call_sid, direction, flow, touch_id, status, state, created_at) "
            "VALUES (1, 'CA1', 'outbound-api', 'reminder', 1, 'completed', '{}', '2026-11-30 10:00:00')",
            "INSERT INTO call_event (id, call_id, at, kind, detail) VALUES (1, 1, '2026-11-30 10:00:00', 'step', '{}')",
        ):
            db.execute(text(statement))
    engine.dispose()
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT clinic_id FROM \"call\" WHERE id = 1")).scalar() == 7
        assert db.execute(text("SELECT flow FROM touch WHERE id = 1")).scalar() == "reminder"
        assert [bool(v) for v in db.execute(text("SELECT test_call FROM touch ORDER BY id")).scalars()] == [
            False, True]  # a test call, once known by its step's name, now says so itself
        assert db.execute(text("SELECT voice_answers FROM clinic WHERE id = 7")).scalar() in (False, 0)
        assert db.execute(text("SELECT count(*) FROM call_event")).scalar() == 1
        # A call from before turn numbers: turn 0 and nothing to repeat, so its next answer (which
        # carries no number) is still taken.
        assert db.execute(text("SELECT turn, last_twiml FROM \"call\" WHERE id = 1")).one() == (0, None)
        assert db.execute(text("SELECT timezone FROM location WHERE id = 1")).scalar() is None
        # Every touch names its patient now: its appointment's.
        assert db.execute(text("SELECT patient_id FROM touch ORDER BY id")).scalars().all() == [1, 1]
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_downgrading_past_refill_prompts_keeps_their_calls(backend, tmp_path, request):
    from alembic import command
    from sqlalchemy import create_engine, text

    from ivr.cli import alembic_config

    url = f"sqlite:///{tmp_path / 'new.sqlite3'}" if backend == "sqlite" else _fresh_postgres_database(request)
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.begin() as db:
        for statement in (
            "INSERT INTO clinic (id, name, timezone, phone, language) VALUES (7, 'C', 'UTC', '+12125550100', 'en')",
            "INSERT INTO patient (id, clinic_id, first_name, last_name, phone, language, preferred_channel) "
            "VALUES (1, 7, 'A', 'B', '+12125550143', 'en', 'voice')",
            "INSERT INTO prescription (id, patient_id, medication, created_at, refill_due_on) "
            "VALUES (1, 1, 'M', '2026-11-30 10:00:00', '2026-12-10')",
            "INSERT INTO touch (id, patient_id, prescription_id, refill_due_on, step, flow, channel, due_at, status, "
            "attempts, updated_at) VALUES (1, 1, 1, '2026-12-10', 'refill', 'refill', 'voice', "
            "'2026-12-07 10:00:00', 'completed', 1, '2026-12-07 10:00:00')",
            "INSERT INTO \"call\" (id, call_sid, direction, flow, touch_id, clinic_id, status, state, created_at) "
            "VALUES (1, 'CA1', 'outbound-api', 'refill', 1, 7, 'completed', '{}', '2026-12-07 10:00:00')",
            "INSERT INTO conversation (id, clinic_id, patient_id, prescription_id, phone, flow, state, opened_at) "
            "VALUES (1, 7, 1, 1, '+12125550143', 'text_refill', '{}', '2026-12-07 10:00:00')",
        ):
            db.execute(text(statement))
    engine.dispose()
    command.downgrade(alembic_config(url), "0023")
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT id, touch_id FROM \"call\"")).all() == [(1, None)]
        assert db.execute(text("SELECT count(*) FROM touch")).scalar() == 0
        # A refill text's question, which the older code could not answer, is closed.
        assert db.execute(text("SELECT closed_at IS NOT NULL FROM conversation")).scalar() in (True, 1)
    engine.dispose()


def test_a_reminder_sent_before_titles_had_a_column_still_matches_its_appointment():
    """Migration 0016 split 'Doctor Patel' into a name and a title; the fingerprint a text or a
    call remembered from before must still be the appointment's."""
    import hashlib

    from ivr.calls import appointment_fingerprint

    before = hashlib.sha256("booked|2026-12-02 14:30:00+00:00|1|Doctor Patel".encode()).hexdigest()[:16]
    row = {"appointment_id": 1, "appointment_status": "booked", "starts_at": "2026-12-02 14:30:00+00:00",
           "location_id": 1, "provider_name": "Patel", "provider_title": "doctor"}
    assert appointment_fingerprint(row) == before
    assert appointment_fingerprint({**row, "provider_name": "Sam Doctorow", "provider_title": None}) == (
        hashlib.sha256("booked|2026-12-02 14:30:00+00:00|1|Sam Doctorow".encode()).hexdigest()[:16])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_turns_english_place_and_title_words_into_proper_names(backend, tmp_path, request):
    """Names written for English prompts ("the Main Street office", "Doctor Patel") become the
    proper names each language now builds around; names in any other form stay as they were."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from ivr.cli import alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}" if backend == "sqlite" else _fresh_postgres_database(request)
    command.upgrade(alembic_config(url), "0015")
    engine = create_engine(url)
    locations = ["the Main Street office", "The Riverside Office", "Downtown Clinic", "Main Street Office",
                 "the Eastside clinic", "Lakeview"]
    providers = ["Doctor Patel", "Dr. Amara Lee", "dr Okafor", "Sam Doctorow", "Nurse Kim", "Dr.Park"]
    with engine.begin() as db:
        db.execute(text("INSERT INTO clinic (id, name, timezone, phone, language, voice_answers, sms_private, "
                        "retry_wrong_person) VALUES (7, 'C', 'UTC', '+12125550100', 'en', false, false, false)"))
        db.execute(text("INSERT INTO patient (id, clinic_id, first_name, last_name, phone, language, "
                        "preferred_channel) VALUES (1, 7, 'A', 'B', '+12125550143', 'en', 'voice')"))
        for n, name in enumerate(locations, 1):
            db.execute(text("INSERT INTO location (id, clinic_id, name) VALUES (:id, 7, :name)"),
                       {"id": n, "name": name})
        for n, name in enumerate(providers, 1):
            db.execute(text("INSERT INTO appointment (id, patient_id, location_id, provider_name, starts_at, status) "
                            "VALUES (:id, 1, 1, :name, '2026-12-01 10:00:00', 'booked')"), {"id": n, "name": name})
    engine.dispose()
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT name FROM location ORDER BY id")).scalars().all() == [
            "Main Street", "Riverside", "Downtown Clinic", "Main Street", "Eastside clinic", "Lakeview"]
        assert db.execute(text("SELECT provider_name, provider_title FROM appointment ORDER BY id")).all() == [
            ("Patel", "doctor"), ("Amara Lee", "doctor"), ("Okafor", "doctor"), ("Sam Doctorow", None),
            ("Nurse Kim", None), ("Park", "doctor")]
    engine.dispose()
    command.downgrade(alembic_config(url), "0015")
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT provider_name FROM appointment ORDER BY id")).scalars().all() == [
            "Doctor Patel", "Doctor Amara Lee", "Doctor Okafor", "Sam Doctorow", "Nurse Kim", "Doctor Park"]
    engine.dispose()


def _fresh_postgres_database(request) -> str:
    """An empty PostgreSQL database of its own, dropped after the test."""
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests.conftest import NO_POSTGRES

    server = os.environ.get("IVR_TEST_DATABASE_URL")
    if not server:
        pytest.skip(NO_POSTGRES)
    name = f"ivr_migrate_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    request.addfinalizer(drop)
    return make_url(server).set(database=name).render_as_string(hide_password=False)
