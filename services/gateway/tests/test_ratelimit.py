import pytest

from gateway.domain import client_address, retry_after
from gateway.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate_per_second=2, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0
    assert bucket.take(0.5) == pytest.approx(0.5)


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    bucket = TokenBucket(rate_per_second=10, burst=2, now=0.0)
    assert [bucket.take(3600.0) for _ in range(3)][-1] > 0


def test_each_key_has_its_own_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=1, burst=1, clock=clock)
    assert limiter.wait_seconds("a") == 0
    assert limiter.wait_seconds("a") == pytest.approx(1.0)
    assert limiter.wait_seconds("b") == 0
    clock.now += 1
    assert limiter.wait_seconds("a") == 0


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(rate_per_second=1, burst=1, now=10.0)
    bucket.take(10.0)
    assert bucket.take(5.0) > 0


@pytest.mark.parametrize(("wait", "header"), [(0.001, "1"), (1.0, "1"), (1.2, "2"), (30, "30")])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: str) -> None:
    assert retry_after(wait) == header


def test_the_limiter_keeps_at_most_max_buckets_dropping_the_least_recently_used() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=0.001, burst=1, clock=clock, max_buckets=2)
    assert limiter.wait_seconds("a") == 0
    assert limiter.wait_seconds("b") == 0
    assert limiter.wait_seconds("a") > 0  # "a" is now the most recently used
    assert limiter.wait_seconds("c") == 0  # "b" goes

    assert len(limiter) == 2
    assert limiter.wait_seconds("a") > 0
    assert limiter.blocked_seconds("c") > 0


def test_blocked_seconds_looks_without_taking() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=1, burst=2, clock=clock)
    assert limiter.blocked_seconds("a") == 0
    assert limiter.wait_seconds("a") == 0
    assert [limiter.blocked_seconds("a") for _ in range(5)] == [0] * 5
    assert limiter.wait_seconds("a") == 0
    assert limiter.blocked_seconds("a") == pytest.approx(1)
    clock.now += 1
    assert limiter.blocked_seconds("a") == 0


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("203.0.113.7", 5000), "203.0.113.7"),
        (("2001:db8:1:2:3:4:5:6", 5000), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 5000), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.7", 5000), "203.0.113.7"),
        (None, ""),
    ],
)
def test_clients_are_limited_per_ipv4_address_and_ipv6_slash_64(
    client: tuple[str, int] | None, key: str
) -> None:
    assert client_address({"type": "http", "client": client}) == key


def test_a_token_given_back_is_there_again_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=0.001, burst=2, clock=clock)
    limiter.give_back("never-seen")
    assert limiter.wait_seconds("a") == 0
    assert limiter.wait_seconds("a") == 0
    assert limiter.wait_seconds("a") > 0
    limiter.give_back("a")
    assert limiter.wait_seconds("a") == 0
    limiter.give_back("a")
    limiter.give_back("a")
    limiter.give_back("a")
    assert [limiter.wait_seconds("a") for _ in range(3)][-1] > 0
