"""The API over a temporary SQLite store, called in-process through its ASGI interface.

``api.get(path, as_=Role.OPERATOR)`` sends the request with a key of that role;
``as_=None`` sends no token.  Pipelines written with ``pipeline_file`` move rows
between two SQLite files in the test's folder.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.config import Settings
from pacsync.domain.access import Role

with warnings.catch_warnings():  # starlette would rather use httpx2, which is not installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PIPELINE = """\
version: 1
name: {name}
connections:
  legacy: {{url: "sqlite:///{folder}/legacy.db"}}
  warehouse: {{url: "sqlite:///{folder}/warehouse.db"}}
source: {{connection: legacy}}
destination: {{connection: warehouse}}
entities:
  parcels:
    source: {{table: Parcel, key: [ParcelID]}}
    target: {{table: parcels}}
    fields:
      parcel_id: {{from: ParcelID, type: integer}}
      address: {{from: Address, transforms: [trim]}}
  owners:
    source: {{table: Owner, key: [OwnerID]}}
    target: {{table: owners}}
    fields:
      owner_id: {{from: OwnerID, type: integer}}
"""


def pipeline_text(name: str, folder: Path) -> str:
    return PIPELINE.format(name=name, folder=folder)


@dataclass
class Api:
    """A test client plus one API key per role."""

    client: TestClient
    store: bootstrap.Store
    settings: Settings
    tokens: dict[Role, str]

    def headers(self, as_: Role | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        as_: Role | None = Role.ADMIN,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        url = path if path.startswith("/docs") else f"/api/v1{path}"
        return self.client.request(method, url, headers=self.headers(as_, headers), **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def audit(self, action: str) -> list[dict[str, Any]]:
        return self.store.audit.recent(action=action)

    def pipeline_file(self, name: str = "county") -> Path:
        folder = self.settings.home / "pipelines"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.yaml"
        path.write_text(pipeline_text(name, self.settings.home), encoding="utf-8")
        return path


def settings_for(tmp_path: Path, **changes: Any) -> Settings:
    """Settings of a store under ``tmp_path``, whatever the environment says."""
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "database_url": None,
        "pipelines_dir": None,
        "jwt_secret": None,
        "jwt_jwks_url": None,
        "jwt_audience": None,
        "jwt_issuer": None,
        "secret_key": None,
    }
    values.update(changes)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The problem document of an error response, checked for its status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:pacsync:problem:{code}"
    assert body["title"]
    assert body["detail"]
    assert body["hint"]
    return body


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    store = bootstrap.store(settings)
    tokens = {role: store.api_keys.create(f"test {role.value}", role)[1] for role in Role}
    with TestClient(create_app(settings, store=store)) as client:
        yield Api(client, store, settings, tokens)
    store.engine.dispose()
