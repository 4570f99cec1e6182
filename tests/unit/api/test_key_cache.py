from __future__ import annotations

import datetime as dt

from pacsync.api.key_cache import KeyCache
from pacsync.db.api_keys import ApiKeyView
from pacsync.domain.access import Role


def _key() -> ApiKeyView:
    return ApiKeyView(
        id="0123456789abcdef",
        name="monitoring",
        role=Role.VIEWER,
        created_at=dt.datetime(2026, 1, 1),
        last_used_at=None,
        revoked_at=None,
        rate_limit_per_min=None,
    )


def test_a_kept_key_is_found_until_its_time_to_live_ends() -> None:
    now = [0.0]
    cache = KeyCache(ttl_s=5.0, clock=lambda: now[0])
    key = _key()
    cache.keep("psk_0123456789abcdef_secret", key)
    assert cache.get("psk_0123456789abcdef_secret") == key
    assert cache.get("psk_0123456789abcdef_other") is None
    now[0] = 5.0
    assert cache.get("psk_0123456789abcdef_secret") is None


def test_tokens_are_not_kept_in_clear_and_clear_forgets_them() -> None:
    cache = KeyCache()
    cache.keep("psk_0123456789abcdef_secret", _key())
    assert "psk_0123456789abcdef_secret" not in repr(cache._keys)
    cache.clear()
    assert cache.get("psk_0123456789abcdef_secret") is None
