"""Token buckets: a burst of the rate, then one request per 60/rate seconds."""

from __future__ import annotations

import pytest

from pacsync.api.rate_limit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_the_rate_then_a_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(default_per_min=60, clock=clock)
    assert [limiter.take("key:a") for _ in range(60)] == [None] * 60
    assert limiter.take("key:a") == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.take("key:a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("key:a") is None


def test_each_caller_has_its_own_bucket_and_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(default_per_min=600, clock=clock)
    assert [limiter.take("key:slow", 2) for _ in range(3)] == [None, None, pytest.approx(30.0)]
    assert limiter.take("key:fast") is None


def test_a_bucket_refills_no_higher_than_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(default_per_min=3, clock=clock)
    limiter.take("key:a")
    clock.now += 3600
    assert [limiter.take("key:a") for _ in range(4)][-1] == pytest.approx(20.0)


def test_idle_callers_are_forgotten_when_there_are_too_many() -> None:
    clock = Clock()
    limiter = RateLimiter(default_per_min=1, clock=clock, max_callers=2)
    limiter.take("ip:1")
    limiter.take("ip:2")
    clock.now += 61
    limiter.take("ip:3")
    assert limiter.take("ip:1") is None  # it had been forgotten with a full bucket


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(s) for s in (0.01, 1.0, 1.2, 29.9)] == ["1", "1", "2", "30"]
