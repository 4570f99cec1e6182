"""Answers from the store remembered for a few seconds, so a client polling (an API
key) or a viewer fetching hundreds of frames (a viewer link) costs no store query
each time.

An answer is looked up again at most every ``ttl_s``: a change made by another
process counts within that time, one made through this server at once (the
writes call :meth:`Remembered.clear`).  At most ``most`` answers are kept; past
that they are all let go and looked up again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")

TTL_S = 5.0


class Remembered(Generic[V]):
    def __init__(
        self,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        most: int = 1024,
    ) -> None:
        self.ttl_s, self.clock, self.most = ttl_s, clock, most
        self._answers: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        """The answer kept for ``key``, unless it is older than ``ttl_s``."""
        with self._lock:
            found = self._answers.get(key)
        if found is None or self.clock() - found[0] >= self.ttl_s:
            return None
        return found[1]

    def keep(self, key: str, answer: V) -> None:
        with self._lock:
            if len(self._answers) >= self.most:
                self._answers.clear()
            self._answers[key] = (self.clock(), answer)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


__all__ = ["TTL_S", "Remembered"]
