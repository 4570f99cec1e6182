"""API keys verified recently, so a polling client costs no store lookup per request.

A key is looked up again at most every ``ttl_s`` (see :mod:`.remembered`): a key
revoked by another process stops working within that time, one revoked through
this server's API at once (writes clear the cache). Entries are found by the
token's SHA-256, never by the token itself; failed lookups are never remembered.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from pacsync.api.remembered import TTL_S, Remembered
from pacsync.db.api_keys import ApiKeyView

MAX_KEYS = 1024


class KeyCache:
    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = Remembered[ApiKeyView](ttl_s, clock, most=MAX_KEYS)

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> ApiKeyView | None:
        return self._keys.get(self._digest(token))

    def keep(self, token: str, key: ApiKeyView) -> None:
        self._keys.keep(self._digest(token), key)

    def clear(self) -> None:
        self._keys.clear()
