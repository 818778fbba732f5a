"""Engine and session factory; callers own their sessions (`with sessions.begin() as s:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker, Session


def make_engine(url: str, sqlite_foreign_keys: bool = True, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout. Statement parameters
    (phone numbers, names) are kept out of error messages, which end up in logs."""
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas if sqlite_foreign_keys else _sqlite_pragmas_no_fk)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No pool_pre_ping: it costs a round trip on every request. A connection found dead (database
    # restarted) is handled by run_transaction, which tries once more on a fresh one.
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers and one writer work at once; SQLite leaves foreign keys off by default."""
    # pysqlite defers BEGIN to the first write, so a SAVEPOINT would open (and its release commit)
    # the whole transaction. We turn that off and emit BEGIN ourselves (SQLAlchemy's recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_pragmas_no_fk(dbapi_connection, record) -> None:
    """For migrations: batch mode rebuilds a table by copy-and-drop, which enforced foreign keys
    forbid while other tables point at it (Alembic's advice; integrity is checked afterwards)."""
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes
    # fails at once with "database is locked" when another writer got there first, while an
    # immediate one waits for the busy timeout. Our transactions nearly all write; one that only
    # reads for long (a campaign's planner) says so, and leaves the lock to the writers.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


READ_ONLY = "ivr_read_only"


def read_only(session: Session) -> Session:
    """Mark a new session's transaction as one that only reads: on SQLite it does not take the
    write lock (WAL lets it read while others write). Call before the session's first query."""
    session.connection(execution_options={READ_ONLY: True})
    return session


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


T = TypeVar("T")


def run_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run work in one transaction; again on a fresh connection if the pooled one had died."""
    try:
        with sessions.begin() as session:
            return work(session)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with sessions.begin() as session:
        return work(session)
