"""PostgreSQL restarted under running workers: they reconnect and nothing is lost.

The store, the job engine's tables, the legacy database and the target all live
in the one PostgreSQL server that is restarted in the middle of a sync job.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from .assessment import Deployment
from .test_crash_resume import _assert_target_equals_source, big_legacy, legacy
from .test_workers import (
    Worker,
    _serve,
    _submit,
    _wait_for,
    _wait_for_valuations,
    deployment,
    store,
    target,
    workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["big_legacy", "deployment", "legacy", "store", "target", "workers"]


def restart_postgresql() -> None:
    (version,) = [p.name for p in Path("/etc/postgresql").iterdir()]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_workers_ride_out_a_postgresql_restart_mid_job(
    pacsync: Any,
    deployment: Deployment,
    workers: list[Worker],
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    worker = _serve(pacsync, workers, "w1")
    job_id = _submit(pacsync, deployment.pipeline)
    _wait_for_valuations(target)
    restart_postgresql()
    job = _wait_for(deployment, job_id, timeout=300)
    assert job.status == "succeeded", job
    assert worker.process.poll() is None, worker.output()  # the worker lived through it
    _assert_target_equals_source(pacsync, deployment, target, legacy)
