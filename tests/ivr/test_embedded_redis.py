"""The embedded redis-server: one per instance folder, shared, stopped by its owner, data kept."""

import os
import subprocess
import sys
import textwrap

from redis import ConnectionPool, Redis
from rq.connections import parse_connection

from ivr import embedded_redis

OWNER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from ivr import embedded_redis
    client = embedded_redis.connect(Path(sys.argv[1]))
    client.rpush("queued", "touch-1")
    print(client.info("server")["process_id"])
""")


def run_owner(folder):
    return subprocess.run([sys.executable, "-c", OWNER, str(folder)], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_owner_stops_its_server_at_exit_and_the_data_survives(tmp_path):
    server_pid = int(run_owner(tmp_path))
    assert not alive(server_pid)
    assert not (tmp_path / "redis.sock").exists()
    assert (tmp_path / "redis.rdb").exists()
    client = embedded_redis.connect(tmp_path)
    try:
        assert client.lrange("queued", 0, -1) == [b"touch-1"]
    finally:
        client.shutdown(nosave=True)


def test_second_client_and_rebuilt_clients_share_one_server(tmp_path):
    first = embedded_redis.connect(tmp_path)
    try:
        second = embedded_redis.connect(tmp_path)
        # RQ's scheduler rebuilds its connection like this; it must reach the same server.
        connection_class, pool_class, pool_kwargs = parse_connection(first)
        rebuilt = connection_class(connection_pool=ConnectionPool(connection_class=pool_class,
                                                                  **pool_kwargs))
        first.set("k", "v")
        assert second.get("k") == b"v" and rebuilt.get("k") == b"v"
        pids = {c.info("server")["process_id"] for c in (first, second, rebuilt)}
        assert len(pids) == 1
    finally:
        first.shutdown(nosave=True)
    assert isinstance(first, Redis) and type(first) is Redis


USER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from ivr import embedded_redis
    client = embedded_redis.connect(Path(sys.argv[1]))
    print("connected", flush=True)
    sys.stdin.readline()  # keeps its connection until told to finish
    print(client.lpop("queued").decode(), flush=True)
""")


def test_a_short_command_that_started_the_server_leaves_it_to_those_still_using_it(tmp_path):
    """`ivr worker --burst` (say) started the server; a web server and worker still use it.
    Only the last process out stops it."""
    embedded_redis.connect(tmp_path).shutdown(nosave=True)  # a fresh start for this folder
    user = subprocess.Popen([sys.executable, "-c", USER, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert user.stdout.readline().strip() == "connected"  # it started the server
        server_pid = int(run_owner(tmp_path))                 # a short command came and went
        assert alive(server_pid)                              # ... and left the server running
        user.stdin.write("finish\n")
        user.stdin.flush()
        assert user.stdout.readline().strip() == "touch-1"    # the user still reaches it
        assert user.wait(timeout=30) == 0
    finally:
        user.kill()
    assert not alive(server_pid)  # the last one out stopped it
    assert (tmp_path / "redis.rdb").exists()
