"""Driver messages translated into pacsync errors, transient or terminal."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from pacsync.connectors.sql.errors import translate


def _driver(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception(message))


@pytest.mark.parametrize(
    ("message", "code", "transient"),
    [
        (
            'connection to server at "127.0.0.1", port 5432 failed: FATAL: '
            'database "assessor" does not exist',
            "PACS-003",
            False,
        ),
        ("(1049, \"Unknown database 'assessor'\")", "PACS-003", False),
        (
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
            "PACS-001",
            True,
        ),
        ('FATAL: password authentication failed for user "sync"', "PACS-002", False),
    ],
)
def test_driver_messages_get_a_code_and_a_retry_marker(
    message: str, code: str, transient: bool
) -> None:
    error = translate(_driver(message), "source 'legacy'")
    assert (error.code, error.transient, error.connection) == (code, transient, "legacy")
    assert error.message.startswith("source 'legacy': ")
