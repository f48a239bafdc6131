"""Per-API-key token buckets.

The buckets live in this gateway process's memory: each replica limits on its own, so with
N replicas behind a load balancer a key can get up to N times RATE_LIMIT_PER_SECOND. A shared
limiter (Redis, or PostgreSQL) would be needed for an exact platform-wide limit.
"""

import math
import time
from collections.abc import Callable, Hashable


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: int, now: float) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> float:
        """Takes one token; returns 0 when it could, else the seconds until one is there."""
        elapsed = max(now - self.updated, 0.0)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(
        self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, TokenBucket] = {}

    def wait_seconds(self, key: Hashable) -> float:
        """0 when the request may go ahead, else how long the caller should wait."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)


def retry_after(wait_seconds: float) -> str:
    """The `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_seconds)))
