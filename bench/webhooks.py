"""Benchmark of the Twilio reminder-call webhooks against a constant-TwiML baseline, end to end.

It migrates a fresh database (a temporary SQLite file, or a throw-away database created on the
PostgreSQL server named by --database-url), seeds the demo clinic plus N appointments with one
reminder touch each, starts a real gunicorn server, and then plays N reminder calls with C
concurrent clients, with no prompt audio rendered: the signed answer webhook, three signed key
presses (1 identity, 9 repeat, 1 confirm) and a signed "completed" status callback, exactly as
Twilio would send them. It then plays N more calls whose prompts were rendered first (as the
outbound job renders them), so that every answer is <Play> of cached audio. Last it sends as many
requests, with the same concurrency, to POST /bare, a route that returns fixed TwiML without
signature check or database, and prints per-request latency (p50, p99, mean) and throughput for
each, plus the ratios of the medians. Every response and the final appointment statuses are
checked; any mismatch exits non-zero. Timings are reported, never asserted. Run:
`.venv/bin/python bench/webhooks.py [--calls N] [--concurrency C] [--workers W]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask import Flask, Response  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

AUTH_TOKEN = "bench-token"
ACCOUNT_SID = "AC" + "b" * 32
CLINIC_NUMBER = "+12125550100"
THREADS = 4
WARMUP_REQUESTS = 20
STEPS_PER_CALL = 5  # answer, 1, 9, 1, status callback
BARE_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>'


class BenchFailure(Exception):
    """The benchmark could not run, or the server answered something wrong."""


# --- the app gunicorn serves -------------------------------------------------------------------

def bare() -> Response:
    """Constant TwiML: the floor any webhook pays for HTTP, gunicorn and Flask."""
    return Response(BARE_TWIML, mimetype="text/xml")


def make_app() -> Flask:
    """The ivr app configured from IVR_* variables, plus the bare baseline route."""
    from ivr import create_app

    for name in ("IVR_DATABASE_URL", "IVR_PUBLIC_BASE_URL"):
        if not os.environ.get(name):
            raise RuntimeError(f"{name} must be set (bench/webhooks.py sets it for gunicorn)")
    app = create_app({"ENV": "test", "TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    app.add_url_rule("/bare", "bare", bare, methods=["POST"])
    return app


# --- database ----------------------------------------------------------------------------------

def backend_name(url: str) -> str:
    """'sqlite' or 'postgresql' (the dialect of a SQLAlchemy URL)."""
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def create_pg_database(server_url: str) -> tuple[str, str]:
    """Create a uniquely named database on the server; returns its URL and name."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ivr_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False), name


def drop_pg_database(server_url: str, name: str) -> None:
    """Drop the benchmark's database, closing whatever still holds it."""
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def migrate(url: str) -> None:
    """Create the schema with the project's alembic migrations."""
    from alembic import command

    from ivr.cli import alembic_config

    command.upgrade(alembic_config(url), "head")


@dataclass(frozen=True)
class Planned:
    """One reminder call to simulate: its touch and the numbers involved."""

    touch_id: int
    appointment_id: int
    patient_phone: str


def seed(url: str, count: int) -> list[Planned]:
    """Seed the demo clinic and `count` patients, each with an appointment and a reminder touch."""
    from ivr import demo
    from ivr.db import make_engine, make_sessions
    from ivr.models import Appointment, Patient, Touch, utcnow

    engine = make_engine(url)
    try:
        with make_sessions(engine).begin() as session:
            clinic, _ = demo.seed(session)
            location = clinic.locations[0]
            now = utcnow()
            touches = []
            for i in range(count):
                patient = Patient(clinic=clinic, first_name=f"Bench{i}", last_name="Caller",
                                  phone=f"+1212555{1000 + i % 9000:04d}", language="en",
                                  date_of_birth=dt.date(1970, 1, 1), consent_at=now,
                                  consent_source="bench")
                appointment = Appointment(patient=patient, location=location,
                                          provider_name="Amara Patel", provider_title="doctor",
                                          starts_at=now + dt.timedelta(days=1, minutes=15 * i))
                touches.append(Touch(appointment=appointment, step="reminder", channel="voice",
                                     due_at=now))
            session.add_all(touches)
            session.flush()
            return [Planned(t.id, t.appointment.id, t.appointment.patient.phone) for t in touches]
    finally:
        engine.dispose()


def verify_database(url: str, planned: list[Planned]) -> None:
    """Every simulated call confirmed its appointment and completed its touch."""
    from sqlalchemy import select

    from ivr.db import make_engine
    from ivr.models import Appointment, Touch

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            statuses = dict(connection.execute(select(Appointment.id, Appointment.status)).all())
            touches = dict(connection.execute(select(Touch.id, Touch.status)).all())
    finally:
        engine.dispose()
    wrong = [p.appointment_id for p in planned if statuses.get(p.appointment_id) != "confirmed"]
    if wrong:
        raise BenchFailure(f"{len(wrong)} of {len(planned)} appointments are not 'confirmed' "
                           f"(e.g. id {wrong[0]}: {statuses.get(wrong[0])!r})")
    open_touches = [p.touch_id for p in planned if touches.get(p.touch_id) != "completed"]
    if open_touches:
        raise BenchFailure(f"{len(open_touches)} touches are not 'completed' "
                           f"(e.g. id {open_touches[0]}: {touches.get(open_touches[0])!r})")


# --- gunicorn ----------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, base_url: str, instance_path: Path) -> dict[str, str]:
    """This process's environment without inherited IVR_* settings, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_ENV="test", IVR_DATABASE_URL=database_url, IVR_PUBLIC_BASE_URL=base_url,
               IVR_TWILIO_AUTH_TOKEN=AUTH_TOKEN, IVR_INSTANCE_PATH=str(instance_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return env


def start_gunicorn(port: int, workers: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start gunicorn serving make_app() on 127.0.0.1:port, its output going to log_path."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--workers", str(workers), "--threads", str(THREADS),
               "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--graceful-timeout", "10",
               "--no-control-socket", "bench.webhooks:make_app()"]
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(process: subprocess.Popen, base_url: str, log_path: Path, timeout: float = 30) -> None:
    """Poll /health until it answers 200, or fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchFailure(f"gunicorn exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            if requests.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise BenchFailure(f"gunicorn did not answer /health within {timeout:.0f}s:\n{log_tail(log_path)}")


def stop_gunicorn(process: subprocess.Popen) -> None:
    """Ask gunicorn to shut down gracefully; kill it if it will not."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def log_tail(log_path: Path, lines: int = 30) -> str:
    """The last lines of the server's log."""
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- requests ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Post:
    """One prepared request: path, form, headers, and what a correct answer looks like."""

    path: str
    data: dict[str, str]
    headers: dict[str, str]
    status: int
    must_contain: str | None = None
    must_not_contain: str | None = None


def call_sid(n: int) -> str:
    """A well-formed, unique CallSid."""
    return f"CA{n:032x}"


def signed(validator: RequestValidator, base_url: str, path: str, data: dict[str, str],
           status: int, must_contain: str | None, must_not_contain: str | None = None) -> Post:
    """A request signed over the public URL and its form, exactly as Twilio signs."""
    signature = validator.compute_signature(base_url + path, data)
    return Post(path, data, {"X-Twilio-Signature": signature}, status, must_contain, must_not_contain)


def reminder_call(validator: RequestValidator, base_url: str, n: int, planned: Planned,
                  rendered: bool = False) -> list[Post]:
    """The five webhooks of one call: answer, identity (1), repeat (9), confirm (1), completed.
    With rendered prompts every answer plays audio; without, the carrier says the words."""
    common = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid(n), "From": CLINIC_NUMBER,
              "To": planned.patient_phone, "Direction": "outbound-api"}
    answer = f"/twilio/voice/outbound/{planned.touch_id}"
    step = "/twilio/voice/step?turn={}"  # each answer carries the number of the question it answers
    in_call = {**common, "CallStatus": "in-progress"}
    spoken, absent = ("<Play>", "<Say") if rendered else ("<Say", "<Play>")
    return [
        signed(validator, base_url, answer, in_call, 200, spoken, absent),
        signed(validator, base_url, step.format(1), {**in_call, "Digits": "1"}, 200, spoken, absent),
        signed(validator, base_url, step.format(2), {**in_call, "Digits": "9"}, 200, spoken, absent),
        signed(validator, base_url, step.format(3), {**in_call, "Digits": "1"}, 200, spoken, absent),
        signed(validator, base_url, f"/twilio/status/outbound/{planned.touch_id}",
               {**common, "CallStatus": "completed", "CallDuration": "42"}, 204, None),
    ]


def bare_request(n: int) -> list[Post]:
    """One POST /bare with a form shaped like a key press (no signature needed)."""
    data = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid(n), "From": CLINIC_NUMBER,
            "To": "+12125551000", "CallStatus": "in-progress", "Digits": "1"}
    return [Post("/bare", data, {}, 200, "<Say>Hello</Say>")]


@dataclass
class Results:
    """Per-request latencies (seconds), wall time of the run, and any wrong answers."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0


def one_line(text: str, limit: int = 300) -> str:
    """A response body squeezed onto one line for an error message."""
    return " ".join(text.split())[:limit]


def send(session: requests.Session, base_url: str, post: Post, results: Results) -> bool:
    """Send one request, time it, check its answer; False when it was wrong."""
    started = time.perf_counter()
    try:
        response = session.post(base_url + post.path, data=post.data, headers=post.headers, timeout=30)
    except requests.RequestException as exc:
        results.errors.append(f"POST {post.path}: {type(exc).__name__}: {exc}")
        return False
    results.latencies.append(time.perf_counter() - started)
    if response.status_code != post.status:
        results.errors.append(f"POST {post.path} ({post.data.get('Digits', '-')}): "
                              f"{response.status_code}, expected {post.status}: {one_line(response.text)}")
        return False
    if post.must_contain and post.must_contain not in response.text:
        results.errors.append(f"POST {post.path} ({post.data.get('Digits', '-')}): "
                              f"no {post.must_contain!r} in {one_line(response.text)}")
        return False
    if post.must_not_contain and post.must_not_contain in response.text:
        results.errors.append(f"POST {post.path} ({post.data.get('Digits', '-')}): "
                              f"{post.must_not_contain!r} in {one_line(response.text)}")
        return False
    return True


def drive(base_url: str, jobs: list[list[Post]], concurrency: int) -> Results:
    """Run each job's requests in order, `concurrency` jobs at a time, one Session per thread."""
    pending: queue.SimpleQueue[list[Post]] = queue.SimpleQueue()
    for job in jobs:
        pending.put(job)
    results = Results()
    threads = min(concurrency, len(jobs))
    ready = threading.Barrier(threads + 1)

    def client() -> None:
        with requests.Session() as session:
            ready.wait()
            while True:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                for post in job:
                    if not send(session, base_url, post, results):
                        break

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    ready.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    results.wall = time.perf_counter() - started
    return results


def check(name: str, results: Results, expected: int) -> None:
    """Fail loudly if any request went wrong or is missing."""
    if results.errors:
        shown = "\n  ".join(results.errors[:5])
        raise BenchFailure(f"{name}: {len(results.errors)} wrong answer(s), e.g.:\n  {shown}")
    if len(results.latencies) != expected:
        raise BenchFailure(f"{name}: {len(results.latencies)} requests answered, expected {expected}")


# --- report ------------------------------------------------------------------------------------

def summary(results: Results) -> dict[str, float]:
    """Requests, p50, p99 and mean in milliseconds, and requests per second."""
    ms = [s * 1000 for s in results.latencies]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"requests": len(ms), "p50": cuts[49], "p99": cuts[98], "mean": statistics.fmean(ms),
            "rps": len(ms) / results.wall}


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """Aligned plain-text table of the summaries."""
    header = ("", "requests", "p50 ms", "p99 ms", "mean ms", "requests/s")
    lines = [header] + [(name, f"{s['requests']:d}", f"{s['p50']:.2f}", f"{s['p99']:.2f}",
                         f"{s['mean']:.2f}", f"{s['rps']:.1f}") for name, s in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in lines)


# --- main --------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="reminder calls to simulate (N)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (C)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (W)")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL server URL to create a throw-away database on "
                             "(default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.calls < 2 or args.concurrency < 1 or args.workers < 1:
        parser.error("--calls must be at least 2; --concurrency and --workers at least 1")
    return args


def render_prompts(database_url: str, base_url: str, instance: Path, planned: list[Planned]) -> float:
    """Render every prompt of these calls, as the outbound job does before dialling; seconds taken."""
    from ivr import calls, create_app
    from outbound.jobs import render_call_prompts

    env = server_env(database_url, base_url, instance)
    app = create_app({"ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": base_url,
                      "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": env["IVR_INSTANCE_PATH"]})
    services = app.extensions["ivr"]
    started = time.perf_counter()
    with app.app_context():
        for p in planned:
            with services.sessions() as session:
                flow, context = calls.touch_context(session, p.touch_id)
            render_call_prompts(p.touch_id, flow, context)
    services.synthesizer.close()
    services.engine.dispose()
    return time.perf_counter() - started


def benchmark(args: argparse.Namespace, tmp: Path, database_url: str) -> None:
    """Seed, render, serve, warm up, time the endpoints, verify, and print the table."""
    warmup_calls = -(-WARMUP_REQUESTS // STEPS_PER_CALL)
    migrate(database_url)
    planned = seed(database_url, 2 * args.calls + warmup_calls)
    warmup, said, played = (planned[:warmup_calls], planned[warmup_calls:warmup_calls + args.calls],
                            planned[warmup_calls + args.calls:])

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp / "gunicorn.log"
    process = start_gunicorn(port, args.workers, server_env(database_url, base_url, tmp / "instance"),
                             log_path)
    try:
        wait_healthy(process, base_url, log_path)
        validator = RequestValidator(AUTH_TOKEN)
        sid = iter(range(1, len(planned) + 1))
        warm_calls = [reminder_call(validator, base_url, next(sid), p) for p in warmup]
        said_calls = [reminder_call(validator, base_url, next(sid), p) for p in said]
        played_calls = [reminder_call(validator, base_url, next(sid), p, rendered=True) for p in played]
        total = args.calls * STEPS_PER_CALL
        warm_bare = [bare_request(n) for n in range(WARMUP_REQUESTS)]
        bares = [bare_request(n) for n in range(total)]

        check("warm-up reminder", drive(base_url, warm_calls, args.concurrency),
              len(warm_calls) * STEPS_PER_CALL)
        check("warm-up bare", drive(base_url, warm_bare, args.concurrency), WARMUP_REQUESTS)
        reminder_said = drive(base_url, said_calls, args.concurrency)
        check("reminder steps, prompts said", reminder_said, total)
        # Only now, so that the calls above found nothing rendered (shared prompts included).
        render_seconds = render_prompts(database_url, base_url, tmp / "instance", played)
        reminder_played = drive(base_url, played_calls, args.concurrency)
        check("reminder steps, prompts played", reminder_played, total)
        baseline = drive(base_url, bares, args.concurrency)
        check("bare TwiML", baseline, total)
    except BenchFailure as exc:
        raise BenchFailure(f"{exc}\n--- gunicorn log (tail) ---\n{log_tail(log_path)}") from None
    finally:
        stop_gunicorn(process)
    verify_database(database_url, planned)

    rows = [("reminder, <Say> (nothing rendered)", summary(reminder_said)),
            ("reminder, <Play> (rendered audio)", summary(reminder_played)),
            ("bare TwiML", summary(baseline))]
    print(f"Twilio webhooks on gunicorn: database {backend_name(database_url)}, "
          f"{args.workers} workers x {THREADS} threads, concurrency {args.concurrency}, "
          f"N={args.calls} calls per row ({STEPS_PER_CALL} requests each: answer, 1, 9, 1, status)")
    print(table(rows))
    for name, row in rows[:2]:
        print(f"p50 ratio ({name} / bare): {row['p50'] / rows[2][1]['p50']:.2f}x")
    print("Aim: p50 within 2x of the bare endpoint")
    print(f"rendering the played calls' prompts before they ran (as their jobs would): {render_seconds:.1f} s "
          f"for {len(played)} calls, {1000 * render_seconds / len(played):.0f} ms per call")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark in a temporary directory and database; 1 when anything went wrong."""
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    pg_name = ""
    try:
        if args.database_url and backend_name(args.database_url) != "sqlite":
            if backend_name(args.database_url) != "postgresql":
                raise BenchFailure("--database-url must be a PostgreSQL (or SQLite) URL")
            database_url, pg_name = create_pg_database(args.database_url)
        else:
            database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
        benchmark(args, tmp, database_url)
        return 0
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if pg_name:
            drop_pg_database(args.database_url, pg_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
