import pytest

from gateway.ratelimit import RateLimiter, TokenBucket, retry_after


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
