"""Retry decisions look only at the transient/terminal marker."""

from __future__ import annotations

import pytest

from pacsync.errors import AuthenticationFailed, ConnectionTimeout, PacsyncError
from pacsync.jobs.retry import RetryPolicy, decide


def test_delays_grow_exponentially_within_the_jitter() -> None:
    policy = RetryPolicy(base_delay=2.0, factor=2.0, jitter=0.25)
    assert [policy.delay(n, lambda: 0.5) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert policy.delay(1, lambda: 0.0) == 1.5
    assert policy.delay(1, lambda: 1.0) == 2.5
    assert RetryPolicy(max_delay=5.0).delay(10, lambda: 0.5) == 5.0


@pytest.mark.parametrize(
    ("error", "attempt", "retry"),
    [
        (None, 1, False),
        (AuthenticationFailed("wrong password"), 1, False),
        (ConnectionTimeout("host down"), 1, True),
        (ConnectionTimeout("host down"), 2, True),
        (ConnectionTimeout("host down"), 3, False),
    ],
)
def test_only_transient_errors_are_retried_and_only_so_often(
    error: PacsyncError | None, attempt: int, retry: bool
) -> None:
    assert decide(error, attempt, RetryPolicy(attempts=3), lambda: 0.5).retry is retry
