"""The errors a user meets first, through the CLI against real servers.

Each is a searchable code on one line, what went wrong and where, then a
``hint:`` line saying what to do: PACS-001 (cannot reach the server), PACS-002
(bad credentials), PACS-003 (a table or column the mapping needs is missing),
PACS-101 (a pipeline file mistake, with file, line and the valid choices) and
PACS-004 (records parked as dead letters, in the run summary).
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from .assessment import Deployment, engine, run_summary

pytestmark = pytest.mark.integration

EXIT_FAILED = 1
EXIT_CONFIG = 2


def assert_error(
    done: subprocess.CompletedProcess[str], code: str, *fragments: str, exit_code: int
) -> str:
    """``code`` reported on stderr with ``fragments`` in its message and a hint line after it."""
    output = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == exit_code, output
    assert "Traceback" not in done.stderr, output
    lines = done.stderr.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith(f"{code} ")), None)
    assert at is not None, output
    message = lines[at]
    for fragment in fragments:
        assert fragment in message, output
    assert at + 1 < len(lines), output
    assert re.fullmatch(r"hint: \S.*", lines[at + 1]), output
    return message


def closed_port() -> int:
    """A loopback TCP port nothing listens on (just released by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(pacsync: Any, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment, with an SQLite warehouse that always works."""
    pacsync.env["WAREHOUSE_URL"] = f"sqlite:///{tmp_path / 'warehouse.db'}"
    return pacsync.env  # type: ignore[no-any-return]


# -- PACS-001 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:{port}/test",
        "mysql+pymysql://root@127.0.0.1:{port}/test",
    ],
    ids=["postgresql", "mariadb"],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_an_unreachable_server_is_pacs_001(
    pacsync: Any, recipe: Any, env: dict[str, str], url: str, command: str
) -> None:
    env["LEGACY_DB_URL"] = url.format(port=closed_port())
    done = pacsync(command, recipe.pipeline, *(["--quiet"] if command == "run" else []))
    assert_error(done, "PACS-001", "source 'legacy'", "127.0.0.1", exit_code=EXIT_FAILED)
    if command == "check":
        assert "failed source 'legacy'" in done.stdout
        assert "ok destination 'warehouse'" in done.stdout
    else:
        status, _ = run_summary(done.stdout)
        assert status == "failed"
        # a transient error is tried again with backoff (3 attempts by default) in one job
        assert "retrying in" in done.stdout
        assert "attempt 3 of 3" in done.stdout
        deployment = Deployment(recipe.pipeline, env)
        jobs = deployment.jobs()
        assert [(j.status, j.error_code, j.attempts) for j in jobs] == [("failed", "PACS-001", 3)]
        assert jobs[0].error_hint
        # a job that failed for good is parked whole, with each attempt in its history
        parked = deployment.letters()
        assert [(d["kind"], d["record_key"], d["error_code"]) for d in parked] == [
            ("job", jobs[0].id, "PACS-001")
        ]
        assert [h["attempt"] for h in parked[0]["history"] if "attempt" in h] == [1, 2, 3]


def test_a_terminal_error_is_not_retried(
    pacsync: Any, recipe: Any, env: dict[str, str], pg_url: str
) -> None:
    env["LEGACY_DB_URL"] = pg_url  # reachable, but the legacy tables are missing: PACS-003
    done = pacsync("run", recipe.pipeline, "--quiet")
    assert_error(done, "PACS-003", exit_code=EXIT_FAILED)
    assert "retrying" not in done.stdout
    assert len(Deployment(recipe.pipeline, env).jobs()) == 1


# -- PACS-002 ---------------------------------------------------------------------------------


@pytest.fixture
def mariadb_user(mariadb: Any, mariadb_url: str, recipe: Any) -> Iterator[tuple[str, str]]:
    """(user, URL with a ``{password}`` field): an account with password 'right' that may
    read a database holding the legacy tables."""
    recipe.generate.generate(mariadb_url, scale=0.001, seed=42)
    user = f"pacsync_it_{secrets.token_hex(4)}"
    url = make_url(mariadb_url)
    mariadb.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right'")
    try:
        mariadb.execute(f"GRANT SELECT ON `{url.database}`.* TO '{user}'@'%'")
        yield user, f"mysql+pymysql://{user}:{{password}}@{url.host}:{url.port}/{url.database}"
    finally:
        mariadb.execute(f"DROP USER IF EXISTS '{user}'@'%'")


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_wrong_password_is_pacs_002(
    pacsync: Any, recipe: Any, env: dict[str, str], mariadb_user: tuple[str, str], command: str
) -> None:
    user, url = mariadb_user
    env["LEGACY_DB_URL"] = url.format(password="right")
    if command == "check":  # the account itself works: the password is what is wrong
        done = pacsync("check", recipe.pipeline)
        assert done.returncode == 0, done.stdout + done.stderr
    env["LEGACY_DB_URL"] = url.format(password="wr0ng-Secret")
    done = pacsync(command, recipe.pipeline, *(["--quiet"] if command == "run" else []))
    assert_error(done, "PACS-002", "source 'legacy'", user, exit_code=EXIT_FAILED)
    assert "wr0ng-Secret" not in done.stdout + done.stderr  # never echo a password


# -- PACS-003 ---------------------------------------------------------------------------------


@pytest.fixture
def legacy_pg(pg_url: str, recipe: Any, env: dict[str, str]) -> str:
    recipe.generate.generate(pg_url, scale=0.001, seed=42)
    env["LEGACY_DB_URL"] = pg_url
    return pg_url


def _alter(url: str, sql: str) -> None:
    db = engine(url)
    try:
        with db.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        db.dispose()


def test_a_missing_column_is_pacs_003_naming_it(
    pacsync: Any, recipe: Any, env: dict[str, str], legacy_pg: str
) -> None:
    _alter(legacy_pg, 'ALTER TABLE "PropertyOwner" DROP COLUMN "Phone"')
    done = pacsync("check", recipe.pipeline)
    message = assert_error(
        done, "PACS-003", "'Phone'", "'PropertyOwner'", "owners", exit_code=EXIT_FAILED
    )
    assert "column" in message
    hint = done.stderr.splitlines()[done.stderr.splitlines().index(message) + 1]
    assert "OwnerName" in hint  # the columns the table does have

    done = pacsync("run", recipe.pipeline, "--quiet")
    assert_error(done, "PACS-003", "'Phone'", exit_code=EXIT_FAILED)
    status, counts = run_summary(done.stdout)
    assert status == "failed"
    assert counts["properties"]["inserted"] == 12  # the entity before it was synced
    job = Deployment(recipe.pipeline, env).jobs()[-1]
    assert (job.status, job.error_code) == ("failed", "PACS-003")


def test_a_missing_table_is_pacs_003_naming_it(
    pacsync: Any, recipe: Any, env: dict[str, str], legacy_pg: str
) -> None:
    _alter(legacy_pg, 'DROP TABLE "Structure"')
    for command in ("check", "run"):
        done = pacsync(command, recipe.pipeline, *(["--quiet"] if command == "run" else []))
        message = assert_error(done, "PACS-003", "Structure", exit_code=EXIT_FAILED)
        assert "table" in message


# -- PACS-101 ---------------------------------------------------------------------------------


def _line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_typo_in_the_pipeline_file_is_pacs_101_with_file_line_and_choices(
    pacsync: Any, recipe: Any, env: dict[str, str], tmp_path: Path, command: str
) -> None:
    text = recipe.pipeline.read_text(encoding="utf-8").replace(
        "    strategy: ${OWNER_STRATEGY", "    straegy: ${OWNER_STRATEGY"
    )
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(text, encoding="utf-8")
    line = _line_of(text, "straegy:")
    env["LEGACY_DB_URL"] = f"sqlite:///{tmp_path / 'legacy.db'}"
    done = pacsync(command, pipeline)
    message = assert_error(
        done, "PACS-101", f"{pipeline}:{line}:", "entities.owners.straegy", exit_code=EXIT_CONFIG
    )
    valid = message.split("valid:", 1)[1]
    assert {c.strip() for c in valid.split(",")} >= {"strategy", "cursor", "fields", "validate"}


def test_an_unknown_strategy_is_pacs_101_listing_the_strategies(
    pacsync: Any, recipe: Any, env: dict[str, str], tmp_path: Path
) -> None:
    env["LEGACY_DB_URL"] = f"sqlite:///{tmp_path / 'legacy.db'}"
    env["PROPERTY_STRATEGY"] = "hash-diff"
    done = pacsync("check", recipe.pipeline)
    line = _line_of(recipe.pipeline.read_text(encoding="utf-8"), "${PROPERTY_STRATEGY")
    assert_error(
        done,
        "PACS-101",
        f"{recipe.pipeline}:{line}:",
        "entities.properties.strategy",
        "'hash_diff'",
        "'cursor'",
        "'change_tracking'",
        "'hash-diff'",
        exit_code=EXIT_CONFIG,
    )


# -- PACS-004 ---------------------------------------------------------------------------------


@pytest.fixture
def messy_run(
    pacsync: Any, recipe: Any, env: dict[str, str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], Deployment]:
    env["LEGACY_DB_URL"] = f"sqlite:///{tmp_path / 'legacy.db'}"
    recipe.generate.generate(env["LEGACY_DB_URL"], scale=0.05, seed=42)
    return pacsync("run", recipe.pipeline, "--quiet"), Deployment(recipe.pipeline, env)


def test_invalid_rows_are_pacs_004_in_the_run_summary(
    messy_run: tuple[subprocess.CompletedProcess[str], Deployment], pacsync: Any
) -> None:
    done, deployment = messy_run
    assert done.returncode == 0, done.stdout + done.stderr  # parked rows do not fail a job
    status, counts = run_summary(done.stdout)
    assert status == "succeeded"
    letters = deployment.letters("open")
    assert {d["error_code"] for d in letters} == {"PACS-004"}
    rules = Counter(d["rule"] for d in letters)
    assert rules["enum"]
    assert rules["reference"]
    shown = ", ".join(f"{rule}: {n}" for rule, n in sorted(rules.items()))
    assert f"PACS-004 records parked as dead letters by rule: {shown}" in done.stdout
    assert sum(c["dead letters"] for c in counts.values()) == len(letters)

    listed = pacsync("dead-letters", "list", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "PACS-004" in line]
    assert len(rows) == len(letters)
    assert any("enum" in r and "state" in r for r in rows)
    assert any("reference" in r and "property_id" in r for r in rows)


def test_the_pacs_004_summary_line_has_a_hint(
    messy_run: tuple[subprocess.CompletedProcess[str], Deployment],
) -> None:
    done, _ = messy_run
    lines = (done.stdout + done.stderr).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("PACS-004 "))
    assert at + 1 < len(lines)
    assert re.fullmatch(r"hint: \S.*", lines[at + 1])


def test_the_store_keeps_a_failed_jobs_code_and_hint(
    pacsync: Any, recipe: Any, env: dict[str, str]
) -> None:
    env["LEGACY_DB_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    done = pacsync("run", recipe.pipeline, "--quiet")
    assert done.returncode == EXIT_FAILED
    job = Deployment(recipe.pipeline, env).jobs()[-1]
    shown = pacsync("jobs", "show", job.id[:8])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("PACS-001 "))
    assert re.fullmatch(r"hint: \S.*", lines[at + 1])
    listed = pacsync("jobs")
    assert re.search(rf"{job.id[:8]}.*failed.*PACS-001", listed.stdout)
