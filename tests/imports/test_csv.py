"""`ivr import csv`: good rows written, bad ones named by line and reason, the same file again
changes nothing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ivr.models import Appointment, ExternalRef, Patient, Prescription, utcnow

PATIENTS = """MRN,First Name,Last Name,Phone,DOB,Language,Fax
P-1,Anna,Berg,(212) 555-0199,1948-03-04,es,x
P-2,Bob,Stone,212 555 0111,,en,
P-3,Cara,Lee,555,1950-01-01,en,
P-4,Dan,Wu,+1 212 555 0122,{future},en,
P-5,,Kim,212-555-0133,1960-02-02,en,

P-2,Bob,Again,212 555 0111,,en,
P-6,"Eve
Marie",Ray,212-555-0144,1970-07-07,fr,
"""


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_file_with_three_bad_rows_imports_the_rest_and_names_the_lines(runner, sessions, demo, tmp_path):
    future = (utcnow() + dt.timedelta(days=30)).date().isoformat()
    path = write(tmp_path, "patients.csv", PATIENTS.format(future=future))
    result = runner.invoke(args=["import", "csv", "patients", path, "--clinic", "1"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "patients: 3 created, 0 updated, 0 unchanged, 4 refused (columns ignored: Fax)"
    assert lines[1:] == [
        "line 4: phone: not a phone number (US or international form)",
        "line 5: date_of_birth: a date of birth cannot be in the future",
        "line 6: first_name: Missing data for required field.",
        "line 8: external_id 'P-2' is on line 3 already"]
    with sessions() as session:
        anna = session.scalar(select(Patient).where(Patient.first_name == "Anna"))
        eve = session.scalar(select(Patient).where(Patient.last_name == "Ray"))
    assert (anna.phone, anna.language, anna.date_of_birth) == ("+12125550199", "es", dt.date(1948, 3, 4))
    assert eve.first_name == "Eve Marie"  # a quoted cell over two lines, its line break a space
    again = runner.invoke(args=["import", "csv", "patients", path, "--clinic", "1"])
    assert again.stdout.splitlines()[0] == "patients: 0 created, 0 updated, 3 unchanged, 4 refused (columns ignored: Fax)"
    assert count(sessions, ExternalRef, ExternalRef.kind == "patient") == 3


def test_appointments_and_prescriptions_by_the_clinics_ids(runner, sessions, demo, tmp_path):
    runner.invoke(args=["import", "csv", "patients", write(tmp_path, "p.csv", "id,first_name,last_name,phone\n"
                                                           "P-1,Anna,Berg,2125550199\n"), "--clinic", "1"])
    day = (utcnow() + dt.timedelta(days=5)).date()
    visits = (f"external_id,patient,location_id,provider_name,provider_title,starts_at,status\n"
              f"V-1,P-1,1,Amara Patel,doctor,{day} 09:30,booked\n"
              f"V-2,P-404,1,Amara Patel,doctor,{day}T10:00:00-05:00,booked\n"
              f"V-3,P-1,1,Amara Patel,doctor,tomorrow,booked\n")
    result = runner.invoke(args=["import", "csv", "appointments", write(tmp_path, "v.csv", visits), "--clinic", "1"])
    assert result.stdout.splitlines() == [
        "appointments: 1 created, 0 updated, 0 unchanged, 2 refused",
        "line 3: patient: no patient of the clinic has that id: send the patient first",
        "line 4: starts_at: Not a valid datetime."]
    with sessions() as session:
        visit = session.scalar(select(Appointment).where(Appointment.provider_name == "Amara Patel",
                                                         Appointment.starts_at > utcnow() + dt.timedelta(days=4)))
    # A time without an offset is on the location's clock (New York).
    assert visit.starts_at == dt.datetime.combine(day, dt.time(9, 30), ZoneInfo("America/New_York"))
    again = runner.invoke(args=["import", "csv", "appointments", write(tmp_path, "v.csv", visits), "--clinic", "1"])
    assert again.stdout.splitlines()[0] == "appointments: 0 created, 0 updated, 1 unchanged, 2 refused"
    drugs = f"external_id,patient,medication,refill_due_on,refills_left\nRX-1,P-1,sertraline,{day},2\n"
    assert runner.invoke(args=["import", "csv", "prescriptions", write(tmp_path, "rx.csv", drugs), "--clinic", "1"]
                         ).stdout.startswith("prescriptions: 1 created")
    assert count(sessions, Prescription, Prescription.medication == "sertraline") == 1
    assert runner.invoke(args=["import", "csv", "prescriptions", write(tmp_path, "rx.csv", drugs), "--clinic", "1"]
                         ).stdout.startswith("prescriptions: 0 created, 0 updated, 1 unchanged, 0 refused")
    # Stopped here; a file without an `active` column leaves it stopped.
    with sessions.begin() as session:
        session.scalar(select(Prescription).where(Prescription.medication == "sertraline")).active = False
    assert runner.invoke(args=["import", "csv", "prescriptions", write(tmp_path, "rx.csv", drugs), "--clinic", "1"]
                         ).stdout.startswith("prescriptions: 0 created, 0 updated, 1 unchanged")
    with sessions() as session:
        assert session.scalar(select(Prescription.active).where(Prescription.medication == "sertraline")) is False
    # The patient cancelled: the scheduling system's next export (booked) leaves it cancelled, and says so.
    with sessions.begin() as session:
        session.scalar(select(Appointment).where(Appointment.id == visit.id)).status = "cancelled"
    kept = runner.invoke(args=["import", "csv", "appointments", write(tmp_path, "v.csv", visits), "--clinic", "1"])
    assert kept.stdout.splitlines()[0] == ("appointments: 0 created, 0 updated, 0 unchanged, 2 refused, "
                                           "1 kept as the patient or staff left them")
    assert kept.stdout.splitlines()[-1].startswith("line 2: kept: the appointment is cancelled here")


def test_cells_and_rows_that_cannot_mean_what_the_file_needs(runner, sessions, demo, tmp_path):
    runner.invoke(args=["import", "csv", "patients", write(tmp_path, "p.csv", "id,first_name,last_name,phone\n"
                                                           "P-1,Anna,Berg,2125550199\n"), "--clinic", "1"])
    visits = ("external_id,patient,location_id,provider_name,starts_at\n"
              "V-1,P-1,1,Amara Patel,2030-01-01\n"
              "V-2,P-1,1,Amara Patel,2030-03-10 02:30\n"
              "V-3,P-1,1,Amara Patel,2030-11-03 01:30\n"
              "V-4,P-1,\u00b9,Amara Patel,2030-01-02 09:00\n"
              "V-5,P-1,1,Amara Patel,2030-01-02 09:00,extra\n"
              "V 6,P-1,1,Amara Patel,2030-01-02 09:00\n"
              "V-7,P-1,1,Amara Patel,2030-01-02 09:00\n")
    result = runner.invoke(args=["import", "csv", "appointments", write(tmp_path, "v.csv", visits), "--clinic", "1"])
    assert result.stdout.splitlines() == [
        "appointments: 1 created, 0 updated, 0 unchanged, 6 refused",
        "line 2: starts_at: a date and a time are needed, not a date alone",
        "line 3: starts_at: 2030-03-10 02:30 does not happen on that day's clock (it is skipped when clocks go "
        "forward): give its UTC offset",
        "line 4: starts_at: 2030-11-03 01:30 happens twice on that day's clock (clocks go back): give its UTC offset",
        "line 5: location_id: Not a valid integer.; starts_at: Not a valid aware datetime.",
        "line 6: 6 cells where the header has 5 (a comma not in quotes?)",
        "line 7: external_id: missing or not an id (the clinic's own id: letters, digits and . _ : ~ -, up to 64)"]
    for header, message in (("id,mrn,first_name,last_name,phone", "the columns 'id' and 'mrn' both mean external_id"),
                            ("id,first_name,last_name,Phone,Mobile", "the columns 'Phone' and 'Mobile' both mean phone")):
        twice = runner.invoke(args=["import", "csv", "patients", write(tmp_path, "t.csv", header + "\n"), "--clinic", "1"])
        assert twice.exit_code == 1 and message in twice.output and "nothing was imported" in twice.output
    huge = runner.invoke(args=["import", "csv", "patients", write(
        tmp_path, "h.csv", "id,first_name,last_name,phone\nP-9,Anna," + "B" * 140_000 + ",2125550199\n"),
        "--clinic", "1"])
    assert huge.exit_code == 1 and "h.csv line 2: field larger than field limit" in huge.output
    assert "Traceback" not in huge.output


def test_files_that_cannot_be_read_change_nothing(runner, sessions, demo, tmp_path):
    before = count(sessions, Patient)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("external_id,first_name,last_name,phone\nP-1,Jos\xe9,Berg,2125550199\n".encode("latin-1"))
    for path, message in ((str(latin), "latin.csv is not UTF-8 (byte 0xe9 at offset 46)"),
                          (write(tmp_path, "cols.csv", "external_id,first_name\nP-1,Anna\n"),
                           "cols.csv has no column last_name, phone"),
                          (write(tmp_path, "empty.csv", ""), "empty.csv is empty")):
        result = runner.invoke(args=["import", "csv", "patients", path, "--clinic", "1"])
        assert result.exit_code == 1 and message in result.output and "nothing was imported" in result.output
        assert "Traceback" not in result.output
    missing = runner.invoke(args=["import", "csv", "patients", str(tmp_path / "nope.csv"), "--clinic", "1"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert runner.invoke(args=["import", "csv", "patients", write(tmp_path, "x.csv", "id,first_name,last_name,phone\n"),
                               "--clinic", "999999"]).output.strip() == "Error: no clinic with id 999999"
    assert count(sessions, Patient) == before
