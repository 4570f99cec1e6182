"""Retry decisions, made only on the transient/terminal marker of an error.

Transient errors are retried with exponential backoff and jitter (by default
3 attempts in all, waiting about 2 s, then 4 s); terminal errors never are.
A transient error that says how long to wait (``retry_after``, e.g. from HTTP
Retry-After) is waited for at least that long.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from pacsync.errors import PacsyncError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 2.0
    factor: float = 2.0
    jitter: float = 0.25
    max_delay: float = 300.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        raw = min(self.base_delay * self.factor ** (attempt - 1), self.max_delay)
        spread = raw * self.jitter
        return max(0.0, raw - spread + 2 * spread * rand())


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


def decide(
    error: PacsyncError | None,
    attempt: int,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Whether to try again after ``attempt`` ended with ``error``."""
    if error is None:
        return Decision(False, reason="succeeded")
    if not error.transient:
        return Decision(False, reason=f"{error.code} is terminal")
    if attempt >= policy.attempts:
        return Decision(False, reason=f"gave up after {attempt} attempts")
    delay = policy.delay(attempt, rand)
    if error.retry_after is not None:  # the peer said how long to wait: never less
        delay = max(delay, min(error.retry_after, policy.max_delay))
    return Decision(True, delay, f"{error.code} is transient")
