"""A ``pacsync worker`` serving the sync queue loads files as they are dropped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pacsync.connectors.sql.engine import make_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "pms-files"


def scalar(url: str, sql: str) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    except sa.exc.OperationalError:
        return None  # not created yet
    finally:
        engine.dispose()


def wait_for(check: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not check():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the worker stopped (exit {process.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within 60 s")
        time.sleep(0.1)


def drop(folder: Path, name: str, text: str) -> None:
    """Write under a temporary name, then rename into place (a complete file at once)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{name}.part"
    partial.write_text(text)
    old = time.time() - 60
    os.utime(partial, (old, old))
    partial.rename(folder / name)


def test_files_dropped_while_a_worker_runs_are_loaded(pacsync: Any, tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    shutil.copy(RECIPE / "pipeline.yaml", tmp_path / "pipelines" / "pms-files.yaml")
    drops = tmp_path / "drops"
    for folder in ("patients", "appointments", "providers"):
        (drops / folder).mkdir(parents=True)
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    pacsync.env.update({"PMS_DROPS": str(drops), "WAREHOUSE_URL": warehouse})
    worker = pacsync.start("worker", "--id", "drops-1", "-q", "sync-jobs")
    try:
        samples = (RECIPE / "samples" / "patients_20261123.csv").read_text()
        drop(drops / "patients", "patients_20261123.csv", samples)
        wait_for(
            lambda: scalar(warehouse, "SELECT COUNT(*) FROM patients") == 5,
            "the first file loaded",
            worker,
        )
        wait_for(
            lambda: any((drops / "patients" / "archive").glob("*.csv")),
            "the first file archived",
            worker,
        )
        drop(drops / "patients", "patients_20261124.csv", samples.replace(",Maria,", ",Mia,"))
        wait_for(
            lambda: (
                scalar(warehouse, "SELECT first_name FROM patients WHERE patient_id = 1001")
                == "Mia"
            ),
            "the second file loaded",
            worker,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
    store = f"sqlite:///{tmp_path / 'pacsync-home' / 'pacsync.db'}"
    watched = scalar(
        store, "SELECT COUNT(*) FROM jobs WHERE pipeline = 'pms-files' AND trigger = 'watch'"
    )
    assert watched >= 2
    assert sorted(p.name for p in (drops / "patients").iterdir()) == ["archive"]
