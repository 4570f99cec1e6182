"""The admin key of the first ``pacsync serve``: made once, for a store that never had one."""

from __future__ import annotations

from pathlib import Path

from pacsync import bootstrap
from pacsync.cli.serve import first_admin_key
from pacsync.config import Settings
from pacsync.domain.access import Role


def test_the_first_key_is_made_once_and_never_after_revocation(tmp_path: Path) -> None:
    store = bootstrap.store(Settings(_env_file=None, home=tmp_path, database_url=None))  # type: ignore[call-arg]
    try:
        token = first_admin_key(store)
        assert token is not None
        key = store.api_keys.verify(token)
        assert key is not None
        assert key.role is Role.ADMIN
        assert first_admin_key(store) is None
        assert store.api_keys.revoke(key.id)
        assert first_admin_key(store) is None  # revoking every key does not open a door
        (entry,) = store.audit.recent(action="key.create")
        assert (entry["target"], entry["outcome"]) == (key.id, "ok")
    finally:
        store.engine.dispose()
