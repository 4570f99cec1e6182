"""A fresh SQLite store for each store test, and a secret box."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pacsync.db.store import open_store
from pacsync.security.secrets import SecretBox


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(bytes(range(32)))
