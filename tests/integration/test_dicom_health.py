"""Per-node health and DICOM metrics against a real Orthanc: a healthy node, a node on
a closed port and a silent one; ``pacsync dicom health`` exit codes; ``/ready``'s
``dicom_nodes`` section and ``/metrics``' ``pacsync_dicom_*`` series."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orthanc import (
    LOOPBACK,
    PACSYNC_AE,
    Orthanc,
    Unavailable,
    free_port,
    orthanc,
    storescp,
    unavailable,
)
from orthanc import silent_port as silent_listener
from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.bootstrap import dicom_nodes as wiring
from pacsync.bootstrap.health import NodeProbes
from pacsync.config import Settings
from pacsync.connectors.dicom import health, scu
from pacsync.domain.access import Role
from pacsync.domain.dicom_node import DicomNode
from pacsync.domain.node_health import HealthPolicy, NodeStatus
from pacsync.errors import AssociationRejected, ConnectionTimeout

with warnings.catch_warnings():  # starlette would rather use httpx2, which is not installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
OPTIONS = {"calling_ae": PACSYNC_AE, "timeouts": {"connect": 2, "acse": 3, "dimse": 5}}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Orthanc]:
    base = tmp_path_factory.mktemp("dicom-health")
    try:
        with (
            storescp(base / "storescp") as destination,
            orthanc(base / "orthanc", pacsync_port=free_port(), destination=destination) as up,
        ):
            yield up
    except Unavailable as missing:
        unavailable(request.config, str(missing))


def closed_url() -> str:
    return f"dicom://OFF@{LOOPBACK}:{free_port()}"


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_listener() as port:
        yield port


def test_a_node_that_answers_is_healthy(server: Orthanc) -> None:
    node = DicomNode.of("health-up", server.node_url, OPTIONS)
    found = health.check(node)
    assert found.status is NodeStatus.HEALTHY, found.reasons
    assert found.echo.ok
    assert found.probe is not None
    assert found.probe.ok
    assert 0 < (found.echo.ms or 0) < 1000
    assert 0 < (found.probe.ms or 0) < 1000


def test_a_closed_port_is_unhealthy_with_the_reason() -> None:
    found = health.check(DicomNode.of("health-off", closed_url(), OPTIONS))
    assert found.status is NodeStatus.UNHEALTHY
    assert found.probe is None
    assert found.reasons[0].startswith("echo failed: PACS-001")
    assert "cannot be reached" in found.reasons[0]


def test_a_slow_probe_and_recent_errors_degrade_a_node(server: Orthanc) -> None:
    node = DicomNode.of("health-slow", server.node_url, OPTIONS)
    strict = health.check(node, HealthPolicy(slow_probe_ms=0.001))
    assert strict.status is NodeStatus.DEGRADED
    assert "query probe took" in strict.reasons[0]
    once = {**OPTIONS, "retry": {"attempts": 1}}  # an abort is retried: one try, one operation
    wrong = DicomNode.of("health-flaky", server.node_url.replace("ORTHANC", "NOPE"), once)
    for _ in range(5):
        with pytest.raises((AssociationRejected, ConnectionTimeout)):
            scu.echo(wrong)  # rejected or aborted: a failure of the node named health-flaky
    flaky = health.check(node.model_copy(update={"name": "health-flaky"}))
    assert flaky.status is NodeStatus.DEGRADED
    assert flaky.reasons == ("5 of the last 5 operations failed (100%, limit 20%)",)


def test_probes_are_cached_and_bounded_by_the_budget(server: Orthanc, silent_port: int) -> None:
    probes = NodeProbes(max_age_s=30, timeout_s=1.0)
    up = DicomNode.of("cache-up", server.node_url, OPTIONS)
    silent = DicomNode.of("cache-silent", f"dicom://FAR@{LOOPBACK}:{silent_port}", OPTIONS)
    began = time.monotonic()
    first = {c.health.node: c for c in probes.check([up, silent], budget_s=0.5)}
    assert time.monotonic() - began < 1.0
    assert first["cache-up"].health.status is NodeStatus.HEALTHY
    assert first["cache-silent"].health.status is NodeStatus.UNHEALTHY
    assert "no answer within 0.5 s" in first["cache-silent"].health.reasons[0]
    time.sleep(1.5)  # the silent node's probe ends on its 1 s connect timeout
    second = {c.health.node: c for c in probes.check([up, silent], budget_s=0.5)}
    assert second["cache-up"].age_s > 1.0  # not probed again
    assert "cannot be reached" in second["cache-silent"].health.reasons[0]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_health_exit_codes(pacsync: Any, server: Orthanc) -> None:
    add = ("--calling-ae", PACSYNC_AE, "-o", "timeouts.connect=2")
    assert pacsync("dicom", "node", "add", "pacs", server.node_url, *add).returncode == 0
    healthy = pacsync("dicom", "health", "pacs")
    assert healthy.returncode == 0, healthy.stderr + healthy.stdout
    assert "HEALTHY" in healthy.stdout
    assert pacsync("dicom", "node", "add", "off", closed_url(), *add).returncode == 0
    every = pacsync("dicom", "health")
    assert every.returncode == 1, every.stderr
    assert "UNHEALTHY" in every.stdout
    assert "echo failed: PACS-001" in every.stdout
    strict = pacsync("dicom", "health", "pacs", "--slow-ms", "0.1")
    assert strict.returncode == 1
    assert "DEGRADED" in strict.stdout


# -- the API ------------------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], bootstrap.Store]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, home=tmp_path / "home", database_url=None, secret_key=None
    )
    store = bootstrap.store(settings)
    token = store.api_keys.create("viewer", Role.VIEWER)[1]
    with TestClient(create_app(settings, store=store)) as client:
        yield client, {"Authorization": f"Bearer {token}"}, store
    store.engine.dispose()


def test_ready_reports_each_node_and_stays_ready(
    api: tuple[TestClient, dict[str, str], bootstrap.Store], server: Orthanc, silent_port: int
) -> None:
    client, auth, store = api
    wiring.add_node(store, "ready-up", server.node_url, dict(OPTIONS))
    wiring.add_node(store, "ready-off", closed_url(), dict(OPTIONS))
    wiring.add_node(store, "ready-silent", f"dicom://FAR@{LOOPBACK}:{silent_port}", dict(OPTIONS))
    began = time.monotonic()
    response = client.get("/ready", headers=auth)
    took = time.monotonic() - began
    assert response.status_code == 200, response.text
    body = response.json()
    assert took < 3.5
    nodes = {n["name"]: n for n in body["dicom_nodes"]}
    assert nodes["ready-up"]["status"] == "HEALTHY"
    assert nodes["ready-up"]["echo_ms"] > 0
    assert nodes["ready-up"]["probe_ms"] > 0
    assert nodes["ready-up"]["reasons"] == []
    assert nodes["ready-off"]["status"] == "UNHEALTHY"
    assert "cannot be reached" in nodes["ready-off"]["reasons"][0]
    assert nodes["ready-silent"]["status"] == "UNHEALTHY"
    assert body["status"] == "DEGRADED"  # remote nodes down: reported, still serving
    began = time.monotonic()
    again = client.get("/ready", headers=auth).json()
    assert {n["name"]: n["status"] for n in again["dicom_nodes"]}["ready-up"] == "HEALTHY"
    assert time.monotonic() - began < 1.0  # answered from the kept results


def test_metrics_show_dicom_operations_after_an_echo(
    api: tuple[TestClient, dict[str, str], bootstrap.Store], server: Orthanc
) -> None:
    client, auth, _ = api
    scu.echo(DicomNode.of("metrics-up", server.node_url, OPTIONS))
    twice = {**OPTIONS, "retry": {"attempts": 2, "backoff_s": 0}}
    with pytest.raises(ConnectionTimeout, match="cannot be reached"):
        scu.echo(DicomNode.of("metrics-off", closed_url(), twice))
    text = client.get("/metrics", headers=auth).text
    assert (
        'pacsync_dicom_operations_total{node="metrics-up",operation="echo",outcome="success"} 1.0'
        in text
    )
    assert (
        'pacsync_dicom_operations_total{node="metrics-off",operation="echo",'
        'outcome="unreachable"} 2.0' in text  # each attempt of the retry policy
    )
    assert (
        'pacsync_dicom_operation_seconds_bucket{le="0.1",node="metrics-up",operation="echo"}'
        in text
    )
