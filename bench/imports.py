"""Benchmark of CSV imports: 100,000 patients, then 100,000 appointments and 100,000
prescriptions for them, into a fresh database (a temporary SQLite file, and PostgreSQL when
--database-url names a server: a throw-away database is made on it), then the same three files
again (which must change nothing). Prints the time of each, rows per second and the time per
1,000 rows (p50 and p99 over the batches). Aim: 100,000 rows in under a minute.

Timings are printed, never asserted; wrong results (a row refused, anything changed on the
second import) exit non-zero. Run: `.venv/bin/python bench/imports.py [--rows 100000]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def write_files(folder: Path, rows: int) -> dict[str, Path]:
    """Three CSV files as a scheduling system might export them."""
    day = dt.date.today() + dt.timedelta(days=10)
    files = {kind: folder / f"{kind}.csv" for kind in ("patients", "appointments", "prescriptions")}
    with open(files["patients"], "w") as f:
        f.write("MRN,First Name,Last Name,Phone,DOB,Language\n")
        for i in range(rows):
            f.write(f"P-{i},Anna{i},Berg,(212) 555-{i % 10000:04d},19{40 + i % 50}-0{1 + i % 9}-1{i % 10},"
                    f"{('en', 'es', 'fr', 'ko')[i % 4]}\n")
    with open(files["appointments"], "w") as f:
        f.write("external_id,patient,location_id,provider_name,provider_title,starts_at\n")
        for i in range(rows):
            f.write(f"V-{i},P-{i},1,Amara Patel,doctor,{day + dt.timedelta(days=i % 30)} {9 + i % 8:02d}:{15 * (i % 4):02d}\n")
    with open(files["prescriptions"], "w") as f:
        f.write("external_id,patient,medication,refill_due_on,refills_left\n")
        for i in range(rows):
            f.write(f"RX-{i},P-{i},metformin,{day + dt.timedelta(days=i % 60)},{i % 5}\n")
    return files


def run(url: str, rows: int, folder: Path) -> list[tuple]:
    from alembic import command

    from ivr import create_app, demo
    from ivr.cli import alembic_config
    from ivr.imports.csv_files import import_file
    from ivr.models import utcnow

    command.upgrade(alembic_config(url), "head")
    app = create_app({"ENV": "test", "DATABASE_URL": url, "INSTANCE_PATH": str(folder / "instance"),
                      "TWILIO_AUTH_TOKEN": "b" * 32, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"})
    sessions = app.extensions["ivr"].sessions
    with sessions.begin() as session:
        demo.seed(session, now=utcnow())
    files, results = write_files(folder, rows), []
    with app.app_context():
        for attempt in ("first", "again"):
            for kind, path in files.items():
                batches, last = [], [time.perf_counter()]

                def tick(count, batches=batches, last=last):
                    now = time.perf_counter()
                    batches.append((now - last[0]) * 1000 / count * 1000)
                    last[0] = now

                started = time.perf_counter()
                report = import_file(sessions, 1, kind, path, progress=tick)
                took = time.perf_counter() - started
                expected = (rows, 0, 0) if attempt == "first" else (0, 0, rows)
                if (report.created, report.updated, report.unchanged) != expected or report.refused:
                    sys.exit(f"wrong result: {kind} {attempt}: {report.summary()} {report.refused[:3]}")
                results.append((kind, attempt, took, rows / took, statistics.median(batches),
                                sorted(batches)[int(len(batches) * 0.99) - 1 if len(batches) > 1 else 0]))
    app.extensions["ivr"].engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    targets = [("SQLite", None)]
    if args.database_url:
        targets.append(("PostgreSQL", args.database_url))
    print(f"{'database':<11} {'file':<14} {'import':<6} {'seconds':>8} {'rows/s':>8} {'ms/1000 p50':>12} {'p99':>7}")
    for label, server in targets:
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            if server is None:
                url, drop = f"sqlite:///{folder / 'bench.sqlite3'}", None
            else:
                url, drop = _throwaway(server)
            try:
                for kind, attempt, took, rate, p50, p99 in run(url, args.rows, folder):
                    print(f"{label:<11} {kind:<14} {attempt:<6} {took:>8.1f} {rate:>8.0f} {p50:>12.0f} {p99:>7.0f}")
            finally:
                if drop:
                    drop()


def _throwaway(server: str):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ivr_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


if __name__ == "__main__":
    main()
