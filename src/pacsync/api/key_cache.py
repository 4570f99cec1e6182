"""API keys verified recently, so a polling client costs no store lookup per request.

A key is looked up again at most every ``ttl_s``: a key revoked by another
process stops working within that time, one revoked through this server's API
at once (writes clear the cache). Entries are found by the token's SHA-256,
never by the token itself; failed lookups are never remembered.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from pacsync.db.api_keys import ApiKeyView

TTL_S = 5.0
MAX_KEYS = 1024


class KeyCache:
    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._keys: dict[str, tuple[float, ApiKeyView]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> ApiKeyView | None:
        with self._lock:
            found = self._keys.get(self._digest(token))
        if found is None or self.clock() - found[0] >= self.ttl_s:
            return None
        return found[1]

    def keep(self, token: str, key: ApiKeyView) -> None:
        with self._lock:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            self._keys[self._digest(token)] = (self.clock(), key)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
