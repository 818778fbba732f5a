"""Benchmark of campaign outreach: planning and queueing at scale, then dispatch at a set pace.

Planning: for each database (a temporary SQLite file, and PostgreSQL when --database-url names a
server: a throw-away database is created on it) and each size (10k, 30k, 100k appointments), a
fresh database holds one clinic, patients in four time zones (a third preferring texts), one
booked appointment each within the next three days, and a campaign of two steps (72 h before by
call for patients who prefer calls, 24 h before by text for everyone). A fresh process then runs
`ivr campaign run`'s work (`plan_campaigns(write=True)`, then queueing every planned touch into a
private redis-server) and reports the time of each part and its peak memory above what the
process held before planning. Aims: under 30 s for 100k, and peak memory that does not grow with
the count.

Pacing: N voice touches (300) dispatched by W worker processes (3) at IVR_CALLS_PER_SECOND (5)
through the sandbox carrier over real HTTP (the phones are busy, so each call ends at once); the
rate is measured from the first call to the last as the workers recorded them. Aim: within 5% of
the configured rate.

Timings are printed, never asserted; wrong results (touches missing, calls placed twice) exit
non-zero. Run: `.venv/bin/python bench/outreach.py [--sizes 10000,30000,100000]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--calls 300]
[--workers 3] [--rate 5] [--skip-pacing]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.webhooks import (BenchFailure, backend_name, create_pg_database, drop_pg_database,  # noqa: E402
                            migrate)

HORIZON = dt.timedelta(hours=1)  # outbound.jobs.RECONCILE_HORIZON at its default
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
SEED_BATCH = 5000


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """A private redis-server on a unix socket in `folder`."""
    from ivr.embedded_redis import server_binary

    socket = folder / "redis.sock"
    process = subprocess.Popen([server_binary(), "--port", "0", "--unixsocket", str(socket), "--save", "",
                                "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchFailure("redis-server did not start")
        time.sleep(0.02)
    return process, f"unix://{socket}"


TWO_STEPS = ({"name": "72h-call", "offset_minutes": -72 * 60, "channel": "voice", "audience": "voice"},
             {"name": "24h-text", "offset_minutes": -24 * 60, "channel": "sms", "audience": "all"})
ONE_CALL = ({"name": "call", "offset_minutes": -72 * 60, "channel": "voice", "audience": "all"},)


def seed(url: str, count: int, *, sms_share: int = 3, starts_within: dt.timedelta = dt.timedelta(days=3),
         steps: tuple[dict, ...] = TWO_STEPS) -> int:
    """One clinic calling at any hour, with `count` patients (every `sms_share`-th prefers texts)
    and an appointment each, spread over `starts_within`, and a campaign of `steps`; returns the
    clinic's id."""
    from sqlalchemy import insert, select

    from ivr.db import make_engine, make_sessions
    from ivr.models import Appointment, Campaign, CampaignStep, Clinic, Location, Patient, utcnow

    engine = make_engine(url)
    now = utcnow()
    try:
        with make_sessions(engine).begin() as session:
            clinic = Clinic(name="Bench Clinic", phone="+12125550100", timezone=ZONES[0],
                            calls_from=dt.time(0), calls_until=dt.time(23, 59, 59), daily_contact_cap=10,
                            max_calls_in_progress=1000)
            location = Location(clinic=clinic, name="Main Street")
            session.add_all([clinic, location, Campaign(clinic=clinic, name="Reminders",
                                                        steps=[CampaignStep(**step) for step in steps])])
            session.flush()
            clinic_id, location_id = clinic.id, location.id
        with engine.begin() as connection:
            for start in range(0, count, SEED_BATCH):
                size = min(SEED_BATCH, count - start)
                connection.execute(insert(Patient), [dict(
                    clinic_id=clinic_id, first_name=f"Bench{start + i}", last_name="Patient",
                    phone=f"+1212{5550000 + (start + i) % 10000:07d}"[:12], language="en",
                    timezone=ZONES[(start + i) % len(ZONES)], consent_at=now, consent_source="bench",
                    preferred_channel="sms" if (start + i) % sms_share == 0 else "voice")
                    for i in range(size)])
            spread = starts_within.total_seconds()
            patient_ids = connection.execute(select(Patient.id).where(Patient.clinic_id == clinic_id)
                                             .order_by(Patient.id)).scalars().all()
            for start in range(0, len(patient_ids), SEED_BATCH):
                connection.execute(insert(Appointment), [dict(
                    patient_id=patient_id, location_id=location_id, provider_name="Amara Patel",
                    provider_title="doctor", status="booked",
                    starts_at=now + dt.timedelta(hours=2, seconds=(start + i) * spread / max(count, 1)))
                    for i, patient_id in enumerate(patient_ids[start:start + SEED_BATCH])])
        return clinic_id
    finally:
        engine.dispose()


class PeakMemory:
    """The most this process's resident memory grew above where it was when sampling began
    (sampled every 10 ms in a thread: RSS counts what the database drivers hold too)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._start = self._peak = self._process.memory_info().rss
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(0.01)

    def stop(self) -> int:
        """Bytes grown at the peak."""
        self._running = False
        self._thread.join()
        return max(self._peak, self._process.memory_info().rss) - self._start


def plan_in_this_process(url: str, redis_url: str) -> dict:
    """`ivr campaign run`'s work, timed, with the peak memory it took (run in a fresh process)."""
    from redis import Redis
    from sqlalchemy import func, select

    from ivr.db import make_engine, make_sessions, read_only
    from ivr.models import Touch
    from outbound import campaigns, planning
    from outbound.queueing import outbound_queue, reconcile

    engine = make_engine(url)
    sessions = make_sessions(engine)
    queue = outbound_queue(Redis.from_url(redis_url))
    with sessions() as session:  # warm: connection, metadata, imports
        session.scalar(select(func.count()).select_from(Touch))
    sampler = PeakMemory()
    now = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    with read_only(sessions()) as session:  # as `ivr campaign run` plans
        plan = campaigns.plan_campaigns(session, now, now + dt.timedelta(hours=72),
                                        writer=campaigns.batch_writer(sessions))
    planned_at = time.perf_counter()
    with sessions() as session:  # as `ivr campaign run` queues: what is due within the worker's horizon
        queued = reconcile(queue, planning.touches_to_queue(session, due_before=now + HORIZON))
    done = time.perf_counter()
    grown = sampler.stop()
    with sessions() as session:
        touches = session.scalar(select(func.count()).select_from(Touch))
    engine.dispose()
    jobs = queue.count + len(queue.scheduled_job_registry)
    with sessions() as session:
        due_soon = session.scalar(select(func.count()).select_from(Touch).where(Touch.due_at < now + HORIZON))
    return {"written": plan.written, "touches": touches, "jobs": jobs, "queued": queued.queued, "due_soon": due_soon,
            "plan_s": planned_at - started, "queue_s": done - planned_at, "peak_mb": grown / 2**20}


def run_child(args: list[str]) -> dict:
    """Run this file with `args` in a fresh interpreter; its JSON answer."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchFailure(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def planning_rows(server_url: str | None, sizes: list[int]) -> list[tuple]:
    """One row per (database, size): the planning benchmark."""
    rows = []
    for backend in ["sqlite"] + (["postgresql"] if server_url else []):
        for size in sizes:
            folder = Path(tempfile.mkdtemp(prefix="ivr-bench-outreach-"))
            pg_name = None
            redis_process = None
            try:
                if backend == "sqlite":
                    url = f"sqlite:///{folder / 'bench.sqlite3'}"
                else:
                    url, pg_name = create_pg_database(server_url)
                migrate(url)
                seed(url, size)
                redis_process, redis_url = start_redis(folder)
                result = run_child(["--child-plan", url, redis_url])
                if result["touches"] != result["written"] or result["jobs"] != result["due_soon"]:
                    raise BenchFailure(f"{backend} {size}: {result['written']} planned, {result['touches']} "
                                       f"touches, {result['jobs']} jobs: every touch due within the hour "
                                       f"({result['due_soon']}) must have one job")
                rows.append((backend, size, result))
                print(f"  {backend} {size}: {result['plan_s'] + result['queue_s']:.1f} s", file=sys.stderr)
            finally:
                if redis_process is not None:
                    redis_process.terminate()
                    redis_process.wait(timeout=10)
                if pg_name:
                    drop_pg_database(server_url, pg_name)
                shutil.rmtree(folder, ignore_errors=True)
    return rows


def print_planning(rows: list[tuple]) -> None:
    print("\nPlanning and queueing a two-step campaign (touches: contacts planned; queued: those due\n"
          "within the worker's one-hour horizon, each given a job; the rest wait in the database)\n")
    print(f"{'database':<11}{'appointments':>13}{'touches':>9}{'queued':>8}{'plan s':>9}{'queue s':>9}"
          f"{'total s':>9}{'peak MB':>9}{'per 10k s':>11}")
    for backend, size, r in rows:
        total = r["plan_s"] + r["queue_s"]
        print(f"{backend:<11}{size:>13,}{r['touches']:>9,}{r['queued']:>8,}{r['plan_s']:>9.1f}{r['queue_s']:>9.1f}"
              f"{total:>9.1f}{r['peak_mb']:>9.1f}{total / size * 10000:>11.2f}")


def pacing(server_url: str | None, calls: int, workers: int, rate: int, worker_options: tuple = ()) -> dict:
    """Dispatch `calls` touches with `workers` worker processes at `rate` calls a second through
    the sandbox carrier; the measured rate."""
    from sqlalchemy import func, select

    from ivr import create_app
    from ivr.db import make_engine, make_sessions
    from ivr.models import Call
    from ivr.sandbox.calling import sandbox_config, serve
    from ivr.sandbox.carrier import SandboxCarrier
    from ivr.sandbox import script as scripts
    from outbound import campaigns, planning
    from outbound.queueing import outbound_queue, reconcile

    folder = Path(tempfile.mkdtemp(prefix="ivr-bench-pace-"))
    pg_name = None
    redis_process, redis_url = start_redis(folder)
    try:
        if server_url:
            url, pg_name = create_pg_database(server_url)
        else:
            url = f"sqlite:///{folder / 'bench.sqlite3'}"
        migrate(url)
        seed(url, calls, sms_share=calls + 1, starts_within=dt.timedelta(hours=1), steps=ONE_CALL)
        token = uuid.uuid4().hex
        environment = {"ENV": "development", "DATABASE_URL": url, "REDIS_URL": redis_url,
                       "TWILIO_AUTH_TOKEN": token, "INSTANCE_PATH": str(folder / "instance"),
                       "CALLS_PER_SECOND": str(rate)}
        with serve(lambda base: create_app({**sandbox_config(base), **environment})) as (app, base):
            services = app.extensions["ivr"]
            store = SandboxCarrier.store_for(services.settings, services.redis)
            with make_sessions(make_engine(url)).begin() as session:
                from ivr.models import Patient
                for phone in session.scalars(select(Patient.phone).distinct()):
                    store.set_phone(phone, scripts.parse({"answer": "busy"}))
                now = dt.datetime.now(dt.timezone.utc)
                campaigns.plan_campaigns(session, now, now + dt.timedelta(hours=72), write=True)
            with services.sessions() as session:
                reconcile(outbound_queue(services.redis), planning.touches_to_queue(session))
            env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
            env.update({f"IVR_{k}": v for k, v in {**environment, **sandbox_config(base)}.items()})
            started = time.perf_counter()
            procs = [subprocess.Popen([str(ROOT / ".venv/bin/ivr"), "worker", "--burst", *worker_options], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(workers)]
            for proc in procs:
                proc.wait(timeout=calls / rate * 4 + 120)
            elapsed = time.perf_counter() - started
            with services.sessions() as session:
                created = sorted(session.scalars(select(Call.created_at)))
                placed = session.scalar(select(func.count(Call.touch_id.distinct())))
            dupes = len(created) - placed
    finally:
        redis_process.terminate()
        redis_process.wait(timeout=10)
        if pg_name:
            drop_pg_database(server_url, pg_name)
        shutil.rmtree(folder, ignore_errors=True)
    if len(created) != calls or placed != calls:
        raise BenchFailure(f"{calls} touches: {len(created)} calls recorded, {placed} touches with a call")
    span = (created[-1] - created[0]).total_seconds()
    return {"calls": calls, "workers": workers, "rate": rate, "measured": (len(created) - 1) / span,
            "elapsed": elapsed, "duplicates": dupes}


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child-plan":
        print(json.dumps(plan_in_this_process(sys.argv[2], sys.argv[3])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--database-url", help="a PostgreSQL server to benchmark on as well")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rate", type=int, default=5)
    parser.add_argument("--skip-pacing", action="store_true")
    parser.add_argument("--no-fork", action="store_true", help="workers run each job in the worker process itself (no child forked per job)")
    args = parser.parse_args()
    if args.database_url and backend_name(args.database_url) != "postgresql":
        parser.error("--database-url must name a PostgreSQL server")
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
        rows = planning_rows(args.database_url, sizes)
        print_planning(rows)
        if not args.skip_pacing:
            pace = pacing(args.database_url, args.calls, args.workers, args.rate,
                          ("--no-fork",) if args.no_fork else ())
            print(f"\nDispatch pace through the sandbox carrier ({pace['calls']} calls, {pace['workers']} workers, "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'})\n")
            print(f"{'configured /s':>14}{'measured /s':>13}{'off by':>9}{'elapsed s':>11}{'placed twice':>14}")
            print(f"{pace['rate']:>14}{pace['measured']:>13.2f}{(pace['measured'] / pace['rate'] - 1) * 100:>8.1f}%"
                  f"{pace['elapsed']:>11.1f}{pace['duplicates']:>14}")
    except BenchFailure as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
