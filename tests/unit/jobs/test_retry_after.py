"""A transient error that says how long to wait is waited for at least that long."""

from __future__ import annotations

from pacsync.errors import FhirAuthRejected, FhirRateLimited
from pacsync.jobs.retry import RetryPolicy, decide


def test_retry_after_raises_the_delay_but_never_past_the_policy_maximum() -> None:
    policy = RetryPolicy(attempts=3, base_delay=2.0, jitter=0.0, max_delay=60.0)
    error = FhirRateLimited("429")

    assert decide(error, 1, policy).delay == 2.0
    error.retry_after = 30.0
    assert decide(error, 1, policy).delay == 30.0
    error.retry_after = 0.5  # shorter than the backoff: the backoff stands
    assert decide(error, 1, policy).delay == 2.0
    error.retry_after = 3600.0
    assert decide(error, 1, policy).delay == 60.0


def test_retry_after_does_not_make_a_terminal_error_retryable() -> None:
    error = FhirAuthRejected("401")
    error.retry_after = 5.0
    assert not decide(error, 1, RetryPolicy()).retry
