"""A real ``pacsync run`` process stopped mid-run, then run again to completion.

``kill -9`` leaves no chance to clean up: what was committed stays, with the
checkpoint it completes, and the next run resumes after it.  SIGTERM is the
polite stop: the run ends after the batch in flight, exits 130 and records the
job as interrupted.  Either way the second run leaves the target equal to the
source, with no key written twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .assessment import ENTITIES, Deployment, count, engine, legacy_rows, run_summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCALE = 0.5  # 53,900 legacy rows: about 270 batches of 200
BATCH_SIZE = "200"
STARTED_ROWS = 1_000  # valuations in the target when the run is stopped


@pytest.fixture(scope="module")
def big_legacy(postgres: Any, recipe: Any) -> Iterator[str]:
    """A legacy PostgreSQL database for the module (only read by the tests)."""
    url = postgres.create()
    recipe.generate.generate(url, scale=SCALE, seed=42)
    yield url
    postgres.drop(url)


@pytest.fixture(scope="module")
def legacy(big_legacy: str, recipe: Any) -> dict[str, set[tuple[Any, ...]]]:
    """The legacy keys per entity."""
    return {name: set(rows) for name, rows in legacy_rows(big_legacy, recipe.schema).items()}


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The target database: ``postgresql`` or ``sqlite`` (parametrized indirectly)."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def deployment(pacsync: Any, recipe: Any, big_legacy: str, target: str) -> Deployment:
    pacsync.env.update(
        {
            "LEGACY_DB_URL": big_legacy,
            "WAREHOUSE_URL": target,
            "PACS_SYNC_BATCH_SIZE": BATCH_SIZE,
        }
    )
    return Deployment(recipe.pipeline, pacsync.env)


def _started(pacsync: Any, deployment: Deployment, target: str) -> subprocess.Popen[str]:
    """A run in the background, once it has committed some valuations (bounded wait)."""
    process = pacsync.start("run", deployment.pipeline, "--quiet")
    deadline = time.monotonic() + 60
    try:
        while count(target, "valuations") < STARTED_ROWS:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(
                    f"the run ended (exit {process.returncode}) before it could be "
                    f"stopped; make it longer:\n{out}\n{err}"
                )
            if time.monotonic() > deadline:
                pytest.fail("no valuations reached the target within 60 s")
            time.sleep(0.02)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process


def _valuations_checkpoint(target: str) -> dict[str, Any]:
    db = engine(target)
    try:
        with db.connect() as conn:
            state = conn.exec_driver_sql(
                "SELECT state FROM pacsync_checkpoints WHERE entity = 'valuations'"
            ).scalar_one()
    finally:
        db.dispose()
    return json.loads(state)  # type: ignore[no-any-return]


def _assert_stopped_on_a_batch_boundary(
    target: str, deployment: Deployment, legacy: dict[str, set[tuple[Any, ...]]]
) -> int:
    """The target holds exactly the rows the saved checkpoint covers; returns how many."""
    checkpoint = _valuations_checkpoint(target)
    assert checkpoint["phase"] == "full"
    (after,) = checkpoint["after_key"]
    parked = deployment.open_letters()["valuations"]
    covered = {k for k in legacy["valuations"] if k[0] <= after} - parked
    held = count(target, "valuations")
    assert held == len(covered)
    assert count(target, "valuations", distinct="valuation_id") == held
    return held


def _assert_target_equals_source(
    pacsync: Any,
    deployment: Deployment,
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    parked = deployment.open_letters()
    for name, entity in ENTITIES.items():
        rows = count(target, entity.target)
        assert rows == len(legacy[name] - parked[name]), name
        assert count(target, entity.target, distinct=entity.target_key) == rows, name
    for name, report in deployment.reconcile().items():
        assert report.content_match, name
        assert report.explained, name
    done = pacsync("reconcile", deployment.pipeline)
    assert done.returncode == 0, done.stdout + done.stderr


def _resumed(pacsync: Any, deployment: Deployment, held: int) -> None:
    """Run again: finished entities are checked, the stopped one goes on after its checkpoint."""
    done = pacsync("run", deployment.pipeline, "--quiet", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    status, counts = run_summary(done.stdout)
    assert status == "succeeded"
    for name in ("properties", "owners"):  # completed before the stop
        assert counts[name]["mode"] != "full", name
        assert (counts[name]["inserted"], counts[name]["updated"]) == (0, 0), name
    assert counts["valuations"]["mode"] == "full"
    assert counts["valuations"]["updated"] == 0  # nothing committed is written again
    assert counts["valuations"]["inserted"] + held == count(
        deployment.env["WAREHOUSE_URL"], "valuations"
    )


def _job_line(pacsync: Any, job_id: str) -> str:
    listed = pacsync("jobs")
    assert listed.returncode == 0, listed.stderr
    return next(line for line in listed.stdout.splitlines() if job_id[:8] in line)


@pytest.mark.parametrize("target", ["postgresql"], indirect=True)
def test_kill_9_mid_run_then_the_rerun_completes_it(
    pacsync: Any,
    deployment: Deployment,
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    process = _started(pacsync, deployment, target)
    process.kill()
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    in_target = sum(count(target, e.target) for e in ENTITIES.values())
    assert 0 < in_target < sum(len(keys) for keys in legacy.values())
    assert count(target, "valuations") < len(legacy["valuations"])
    held = _assert_stopped_on_a_batch_boundary(target, deployment, legacy)
    (first,) = deployment.jobs()
    assert first.status == "running"  # nobody could record the end

    _resumed(pacsync, deployment, held)
    _assert_target_equals_source(pacsync, deployment, target, legacy)
    first, second = deployment.jobs()
    assert (first.status, first.error_code) == ("interrupted", "PACS-006")
    assert second.status == "succeeded"
    assert "interrupted" in _job_line(pacsync, first.id)


@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_sigterm_stops_after_the_batch_in_flight_then_the_rerun_completes_it(
    pacsync: Any,
    deployment: Deployment,
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    process = _started(pacsync, deployment, target)
    # a second run of the same pipeline is refused while the first one lives; the first
    # is paused meanwhile so that it is still on the same entity when the signal comes
    process.send_signal(signal.SIGSTOP)
    try:
        second = pacsync("run", deployment.pipeline, "--quiet")
    finally:
        # sent while the process is stopped, the signal goes to whichever of its threads
        # wakes first, not necessarily the main one: the run must still stop promptly
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
    assert second.returncode == 2, second.stdout + second.stderr
    assert second.stderr.startswith("PACS-007 "), second.stderr
    assert "is already running as job" in second.stderr
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    status, counts = run_summary(out)
    assert status == "interrupted"
    assert counts["valuations"]["inserted"] > 0
    lines = err.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("PACS-006 "))
    assert "valuations" in lines[at]
    assert lines[at + 1].startswith("hint: ")

    assert count(target, "valuations") < len(legacy["valuations"])
    held = _assert_stopped_on_a_batch_boundary(target, deployment, legacy)
    assert held == counts["valuations"]["inserted"]  # what it reported is what it committed
    (first,) = deployment.jobs()
    assert (first.status, first.error_code) == ("interrupted", "PACS-006")
    assert "interrupted" in _job_line(pacsync, first.id)

    _resumed(pacsync, deployment, held)
    _assert_target_equals_source(pacsync, deployment, target, legacy)
    first, second = deployment.jobs()
    assert first.status == "interrupted"
    assert second.status == "succeeded"
