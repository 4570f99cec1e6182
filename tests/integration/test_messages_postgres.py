"""The message journal and log on PostgreSQL: the same cases as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from message_store_cases import MessageStoreCases
from pacsync.db.messages import MessageStore
from pacsync.db.store import open_store

pytestmark = pytest.mark.integration


@pytest.fixture
def store(pg_url: str) -> Iterator[MessageStore]:
    engine = open_store(pg_url)
    messages = MessageStore(engine)
    yield messages
    messages.close()
    engine.dispose()


class TestMessageStoreOnPostgresql(MessageStoreCases):
    pass
