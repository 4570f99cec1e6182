"""``pacsync serve`` as a real process on loopback, with a ``pacsync worker`` beside it.

The store and both sides of the recipe's pipeline are PostgreSQL.  The first
start prints an admin key once; with it the pipeline file is uploaded, checked
for readiness, synced through ``POST /sync/start`` and followed to its end,
and the audit trail, the statistics and the metrics show the run.  A second
start prints no key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pacsync import bootstrap
from pacsync.config import Settings
from processes import KEY, Process, free_port, wait_until_up

from .assessment import count

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def site(pacsync: Any, recipe: Any, new_pg_url: Any) -> Any:
    """A PostgreSQL store and the recipe's legacy database (small) and empty warehouse."""
    legacy, warehouse, store = new_pg_url(), new_pg_url(), new_pg_url()
    recipe.generate.generate(legacy, scale=0.01, seed=7)
    pacsync.env.update(
        {"LEGACY_DB_URL": legacy, "WAREHOUSE_URL": warehouse, "PACSYNC_DATABASE_URL": store}
    )
    return pacsync


@pytest.fixture
def serve(site: Any) -> Iterator[tuple[Process, str]]:
    port = free_port()
    server = Process(site.start("serve", "--port", str(port)))
    yield server, f"http://127.0.0.1:{port}"
    server.stop()


def test_serve_prints_a_key_once_and_runs_a_sync_through_the_api(
    site: Any, serve: tuple[Process, str], recipe: Any
) -> None:
    server, base = serve
    token = server.wait_for(KEY.pattern).group(1)
    wait_until_up(base, server)
    api = httpx.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    worker = Process(site.start("worker", "--id", "api-test", "--queues", "sync-jobs"))
    try:
        assert httpx.get(f"{base}/api/v1/jobs", timeout=10).status_code == 401

        saved = api.put(
            "/pipelines/property-assessment",
            content=recipe.pipeline.read_bytes(),
            headers={"Content-Type": "application/yaml"},
        )
        assert saved.status_code == 201, saved.text

        ready = api.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "HEALTHY", ready.text
        checks = {c["name"]: c["status"] for c in ready.json()["checks"]}
        assert checks["connection property-assessment/legacy"] == "up"

        worker.wait_for(r"worker api-test ready")
        started = api.post(
            "/sync/start", json={"pipeline": "property-assessment", "sync_type": "full"}
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]

        job = _until_ended(api, job_id)
        assert job["status"] == "succeeded", job
        assert job["errors"] == []
        properties = job["progress"]["entities"]["properties"]
        assert properties["read"] == 124
        assert count(site.env["WAREHOUSE_URL"], "properties") == properties["inserted"] > 0

        status = api.get("/sync/status").json()
        assert [r["job"]["id"] for r in status["last_runs"]] == [job_id]
        assert status["active"] == []
        page = api.get("/jobs", params={"status": "succeeded"}).json()
        assert [j["id"] for j in page["items"]] == [job_id]
        (day,) = api.get("/statistics", params={"pipeline": "property-assessment"}).json()["items"]
        assert (day["jobs"], day["successes"]) == (1, 1)
        metrics = api.get("/metrics").text
        assert 'pacsync_jobs{status="succeeded"} 1.0' in metrics
        assert 'route="/sync/start"' in metrics
    finally:
        worker.stop()
        api.close()

    store = bootstrap.store(Settings(database_url=site.env["PACSYNC_DATABASE_URL"]))
    try:
        (audited,) = store.audit.recent(action="sync.start")
        assert audited["actor"].startswith("key:")
        assert audited["source_ip"] == "127.0.0.1"
        assert audited["detail"]["job_id"] == job_id
    finally:
        store.engine.dispose()

    server.stop()
    again = Process(site.start("serve", "--port", str(free_port())))
    try:
        again.wait_for(r"pacsync API on")
    finally:
        again.stop()
    assert "psk_" not in again.output()


def _until_ended(api: httpx.Client, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s"
        time.sleep(0.5)
