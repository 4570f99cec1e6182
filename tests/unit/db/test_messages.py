"""The message journal and log on SQLite (the PostgreSQL run is in tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from message_store_cases import MessageStoreCases, incoming
from pacsync.db.messages import MessageStore


@pytest.fixture
def store(engine: Engine) -> Iterator[MessageStore]:
    messages = MessageStore(engine)
    yield messages
    messages.close()


class TestMessageStoreOnSqlite(MessageStoreCases):
    def test_the_journal_fsyncs_its_commits(self, store: MessageStore) -> None:
        store.keep([incoming("C1")])
        writer = store._writer  # the journal's own engine, made by the first keep
        assert writer is not None
        with writer.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
