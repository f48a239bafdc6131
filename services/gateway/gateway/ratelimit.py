"""Token buckets: per API key, and per client address for requests without a valid key and
for failed admin attempts.

The buckets live in this gateway process's memory: each replica limits on its own, so with
N replicas behind a load balancer a key can get up to N times RATE_LIMIT_PER_SECOND. A shared
limiter (Redis, or PostgreSQL) would be needed for an exact platform-wide limit.

The client address is the peer of the connection (uvicorn's `--proxy-headers` and
`--forwarded-allow-ips` make it the client's behind a trusted proxy); IPv6 clients are
limited per /64 (`gateway.domain.client_address`).
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

DEFAULT_MAX_BUCKETS = 100_000


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: int, now: float) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(now - self.updated, 0.0)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now

    def take(self, now: float) -> float:
        """Takes one token; returns 0 when it could, else the seconds until one is there."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def wait(self, now: float) -> float:
        """Like `take` without taking: 0 while a token is there."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    """Buckets by key, at most `max_buckets` of them: the least recently used goes first (a
    bucket left alone long enough is full again, as a new one would be)."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def _bucket(self, key: Hashable, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def wait_seconds(self, key: Hashable) -> float:
        """0 when the request may go ahead (and counts it), else how long to wait."""
        now = self._clock()
        return self._bucket(key, now).take(now)

    def give_back(self, key: Hashable) -> None:
        """Returns the token a request took, once it turned out not to count."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + 1)

    def blocked_seconds(self, key: Hashable) -> float:
        """0 while `key` has a token left (without taking it), else how long to wait."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(self._clock())

    def __len__(self) -> int:
        return len(self._buckets)
