"""``/health`` and ``/ready``: the store, the job layer and every pipeline's connections,
checked at once with a short timeout."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from pacsync.api.app import create_app
from pacsync.domain.access import Role

from .conftest import Api, TestClient


def _checks(body: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in body["checks"]}  # type: ignore[attr-defined,index]


def _with_connection(api: Api, name: str, url: str) -> None:
    path = api.pipeline_file(name)
    path.write_text(
        path.read_text().replace(f"sqlite:///{api.settings.home}/warehouse.db", url),
        encoding="utf-8",
    )


def test_ready_is_healthy_when_everything_answers(api: Api) -> None:
    api.pipeline_file("county")
    response = api.get("/ready", as_=Role.VIEWER)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "HEALTHY"
    checks = _checks(body)
    assert set(checks) == {
        "store",
        "job layer",
        "connection county/legacy",
        "connection county/warehouse",
    }
    assert all(c["status"] == "up" for c in checks.values())
    assert checks["connection county/legacy"]["detail"] == "file not created yet"
    assert isinstance(checks["store"]["response_ms"], float)


def test_ready_is_degraded_when_a_connection_or_a_file_fails(api: Api) -> None:
    _with_connection(api, "county", "postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    (api.settings.home / "pipelines" / "broken.yaml").write_text("name: [", encoding="utf-8")
    response = api.get("/ready", as_=Role.VIEWER)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DEGRADED"
    checks = _checks(body)
    warehouse = checks["connection county/warehouse"]
    assert warehouse["status"] == "down"
    assert str(warehouse["detail"]).startswith("PACS-001")
    assert "pw@" not in response.text
    assert checks["pipeline broken"]["status"] == "down"
    assert checks["store"]["status"] == "up"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_hanging_connections_are_checked_at_once_and_time_out(api: Api, silent_server: int) -> None:
    for name in ("one", "two", "three"):
        _with_connection(api, name, f"postgresql+psycopg://u@127.0.0.1:{silent_server}/{name}")
    began = time.monotonic()
    body = api.get("/ready", as_=Role.VIEWER).json()
    took = time.monotonic() - began
    assert body["status"] == "DEGRADED"
    down = [c for c in body["checks"] if c["status"] == "down"]
    assert {c["name"] for c in down} == {
        f"connection {n}/warehouse" for n in ("one", "two", "three")
    }
    assert took < 5.0  # three 2 s timeouts in parallel, not one after another


def test_ready_is_unhealthy_with_a_503_when_the_store_is_down(api: Api, tmp_path: Path) -> None:
    unreachable = create_engine(f"sqlite:///{tmp_path}/no/such/folder/store.db")
    store = dataclasses.replace(api.store, engine=unreachable)
    with TestClient(create_app(api.settings, store=store)) as client:
        response = client.get("/api/v1/ready", headers=api.headers(Role.VIEWER))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "UNHEALTHY"
    assert _checks(body)["store"]["status"] == "down"
    unreachable.dispose()


def test_a_drop_folder_connection_is_ready_when_its_folder_can_be_read(api: Api) -> None:
    example = Path(__file__).parents[3] / "examples" / "pms-files" / "pipeline.yaml"
    drops = api.settings.home / "drops"
    text = example.read_text(encoding="utf-8").replace("${PMS_DROPS:-drops}", str(drops))
    (api.settings.home / "pipelines").mkdir(parents=True, exist_ok=True)
    (api.settings.home / "pipelines" / "pms-files.yaml").write_text(text, encoding="utf-8")
    exports = _checks(api.get("/ready", as_=Role.VIEWER).json())["connection pms-files/exports"]
    assert exports["status"] == "down"
    assert str(exports["detail"]).startswith("PACS-304 drop folder")
    drops.mkdir()
    exports = _checks(api.get("/ready", as_=Role.VIEWER).json())["connection pms-files/exports"]
    assert (exports["status"], exports["detail"]) == ("up", "folder readable")
