"""Per-caller token buckets: ``rate`` requests a minute, bursts up to ``rate``.

One bucket per principal subject, in this process (each ``--workers`` process
counts on its own).  A refused request learns how many seconds until a token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PER_MIN = 600


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(
        self,
        default_per_min: int = DEFAULT_PER_MIN,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 10_000,
    ) -> None:
        self.default_per_min = default_per_min
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, caller: str, per_min: int | None = None) -> float | None:
        """Take one token for ``caller``; None when allowed, else the seconds to wait."""
        rate = per_min or self.default_per_min
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                if len(self._buckets) >= self.max_callers:
                    self._forget_idle(now)
                bucket = self._buckets[caller] = _Bucket(float(rate), now)
            bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.at) * rate / 60.0)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) * 60.0 / rate

    def _forget_idle(self, now: float) -> None:
        """Drop callers idle long enough to have a full bucket again (they lose nothing)."""
        idle = [c for c, b in self._buckets.items() if now - b.at >= 60.0]
        for caller in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[caller]


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
