"""Pacing outbound calls: the carrier account's calls per second, shared by every worker on every
host through Redis (a moving window kept by the `limits` library), and a clinic's cap on calls in
progress at once (counted in the database when a touch is claimed, see jobs.py)."""

from __future__ import annotations

import time

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

# The longest single pause between tries for a turn; a turn frees within a second anyway.
MAX_PAUSE = 0.25


class CallPace:
    """Calls started per second for one carrier account, whoever starts them."""

    def __init__(self, redis: Redis, per_second: int, account: str) -> None:
        storage = RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix="ivr-pace")
        self._limiter = MovingWindowRateLimiter(storage)
        self._rate = RateLimitItemPerSecond(per_second)
        self._account = account

    def try_turn(self) -> bool:
        """Take a turn to start a call if the account's rate allows one now."""
        return self._limiter.hit(self._rate, "calls", self._account)

    def wait_turn(self) -> float:
        """Wait until a call may start under the account's rate, take that turn, and return the
        seconds waited."""
        started = time.monotonic()
        while not self.try_turn():
            reset_at, _ = self._limiter.get_window_stats(self._rate, "calls", self._account)
            time.sleep(min(max(reset_at - time.time(), 0.005), MAX_PAUSE))
        return time.monotonic() - started
