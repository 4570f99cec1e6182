"""Connection URLs shown without their passwords, whatever their kind."""

from __future__ import annotations

import pytest

from pacsync.connectors.sql.engine import make_engine, redact
from pacsync.errors import ConfigError


def test_database_urls_hide_their_password() -> None:
    assert redact("postgresql+psycopg://app:s3cret@db:5432/x") == (
        "postgresql+psycopg://app:***@db:5432/x"
    )


def test_other_kinds_of_connection_are_shown_as_they_are() -> None:
    assert redact("file:/srv/drops") == "file:/srv/drops"
    assert redact("mllp://10.0.0.9:2575") == "mllp://10.0.0.9:2575"


def test_a_password_in_another_kind_of_url_is_hidden() -> None:
    assert redact("sftp://pms:hunter2@files.example:22/out") == (
        "sftp://pms:***@files.example:22/out"
    )


def test_a_broken_url_is_named_as_such() -> None:
    assert redact("http://[::1") == "<unparseable URL>"


def test_a_url_with_a_port_that_is_not_a_number_is_a_coded_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        make_engine("postgresql+psycopg://app@db:port/x")
    assert (
        redact("postgresql+psycopg://app:pw@db:port/x") == "postgresql+psycopg://app:***@db:port/x"
    )
