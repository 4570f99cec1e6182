"""Retry decisions look only at the transient/terminal marker."""

from __future__ import annotations

import pytest

from pacsync.errors import AuthenticationFailed, ConnectionTimeout, PacsyncError
from pacsync.jobs.retry import Decision, RetryPolicy, decide, with_retries


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


def test_with_retries_runs_until_success_and_waits_between_attempts() -> None:
    outcomes: list[PacsyncError | None] = [ConnectionTimeout("a"), ConnectionTimeout("b"), None]
    waited: list[float] = []
    seen: list[tuple[int, str]] = []

    def on_retry(result: PacsyncError | None, decision: Decision, attempt: int) -> None:
        seen.append((attempt, decision.reason))

    result = with_retries(
        lambda attempt: outcomes[attempt - 1],
        lambda r: r,
        RetryPolicy(attempts=5),
        sleep=waited.append,
        on_retry=on_retry,
        rand=lambda: 0.5,
    )
    assert result is None
    assert waited == [2.0, 4.0]
    assert seen == [(1, "PACS-001 is transient"), (2, "PACS-001 is transient")]


def test_with_retries_stops_at_a_terminal_error() -> None:
    calls: list[int] = []
    terminal = AuthenticationFailed("no")

    def run(attempt: int) -> PacsyncError:
        calls.append(attempt)
        return terminal

    assert with_retries(run, lambda r: r, RetryPolicy(), sleep=lambda s: None) is terminal
    assert calls == [1]
