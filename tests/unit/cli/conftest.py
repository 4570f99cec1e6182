"""CLI commands through typer's runner, on a store of their own in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacsync import bootstrap
from pacsync.cli.app import app
from pacsync.config import Settings


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[bootstrap.Store]:
    """The store the commands use: PACSYNC_HOME under tmp_path, nothing else set."""
    for name in [n for n in os.environ if n.startswith("PACSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PACSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    opened = bootstrap.store(Settings())
    yield opened
    opened.engine.dispose()


def run(*args: str) -> tuple[int, str]:
    """``pacsync ARGS``: its exit code and output."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output
