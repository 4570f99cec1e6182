"""No secret leaves the server.

Distinctive secrets are planted the way users plant them (a connection password,
one inside a connection URL, one inside a pipeline file's URL, an inbound source's
shared secret, an outbound webhook's secret, an API key, the secret box's key, the
JWT secret); then every GET route is called, and the error paths: bad requests
carrying secrets, failing connection tests, refused credentials and messages, a
500.  The app runs as ``pacsync serve`` runs it (under uvicorn on loopback, the
redacting log filter installed), with the root logger at DEBUG, uvicorn's access
log and SQLAlchemy's statement log included.  No response body or header and no
log line may hold a secret; a generated secret may appear only in the one
response that creates it; the store holds secrets sealed and keys as hashes.
"""

from __future__ import annotations

import base64
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from sqlalchemy import MetaData, select

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.rate_limit import RateLimiter
from pacsync.domain.access import Role
from pacsync.security import redaction
from pacsync.security.redaction import RedactingFilter
from pacsync.security.signatures import sign_headers

from .conftest import settings_for
from .endpoints import endpoints

BOX_KEY = base64.b64encode(b"leak-test-secret-box-key-32bytes").decode()
JWT_SECRET = "Jwt-secret-leak-test-9c1e7f0b2d4a6c8e"
CONNECTION_PASSWORD = "Cnx-pw-5a1f9e3b7c"
URL_PASSWORD = "Url-pw-8d2c4e6f1a"
PIPELINE_PASSWORD = "Pipe-pw-3b5d7f9a1c"
QUERY_PASSWORD = "Qry-pw-2e4a6c8e0b"
OPTION_PASSWORD = "Opt-pw-7b9d1f3a5c"
SOURCE_SECRET = "Src-secret-6e8a0c2e4f6a"
PLANTED = {
    "PACSYNC_SECRET_KEY": BOX_KEY,
    "JWT secret": JWT_SECRET,
    "connection password": CONNECTION_PASSWORD,
    "password in a connection URL": URL_PASSWORD,
    "password in a pipeline URL": PIPELINE_PASSWORD,
    "password in a URL's query": QUERY_PASSWORD,
    "password in connection options": OPTION_PASSWORD,
    "inbound source secret": SOURCE_SECRET,
}
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")
UNREACHABLE = "127.0.0.1:1"  # nothing listens: connection tests fail at once

PIPELINE = f"""\
version: 1
name: county
connections:
  legacy: {{url: "postgresql+psycopg://sync:{PIPELINE_PASSWORD}@{UNREACHABLE}/assess"}}
  warehouse: {{url: "sqlite:///{{folder}}/warehouse.db"}}
  replica:
    url: "postgresql+psycopg://sync@{UNREACHABLE}/assess?password={QUERY_PASSWORD}"
    options: {{connect_args: {{password: {OPTION_PASSWORD}}}}}
source: {{connection: legacy}}
destination: {{connection: warehouse}}
entities:
  parcels:
    source: {{table: Parcel, key: [ParcelID]}}
    target: {{table: parcels}}
    fields:
      parcel_id: {{from: ParcelID, type: integer}}
"""


@dataclass
class Exchange:
    label: str
    response: httpx.Response
    may_show: set[str] = field(default_factory=set)  # secrets this response creates

    @property
    def text(self) -> str:
        headers = "\n".join(f"{k}: {v}" for k, v in self.response.headers.multi_items())
        return f"{self.response.status_code}\n{headers}\n\n{self.response.text}"


@dataclass
class Run:
    """What the server answered, what it logged, and the store it wrote."""

    exchanges: list[Exchange]
    log: str
    secrets: dict[str, str]  # planted ones and those the server generated
    store: bootstrap.Store


class _Server:
    """The app under uvicorn in a thread on a free loopback port; uvicorn's own logging
    set-up is skipped so its access log reaches the root logger's handlers."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def logged() -> Iterator[io.StringIO]:
    """Everything logged, at DEBUG, through the redacting filter ``pacsync serve``
    installs; the logging set-up is put back afterwards."""
    root = logging.getLogger()
    level, factory = root.level, logging.getLogRecordFactory()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    redaction.install()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # SQLAlchemy keeps itself at WARNING; uvicorn's logging set-up (another test's server,
    # say) stops its loggers' records at their own handlers
    loud = [logging.getLogger(n) for n in ("sqlalchemy.engine", *UVICORN)]
    kept = [(logger.level, logger.propagate) for logger in loud]
    for logger in loud:
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for logger, (was, propagated) in zip(loud, kept, strict=True):
            logger.setLevel(was)
            logger.propagate = propagated
        logging.setLogRecordFactory(factory)
        filterers: list[logging.Filterer | None] = [
            root,
            *(logging.getLogger(n) for n in redaction._DEFAULT_LOGGERS),
            *root.handlers,
            logging.lastResort,
        ]
        for filterer in filterers:
            if filterer is not None:
                for found in [f for f in filterer.filters if isinstance(f, RedactingFilter)]:
                    filterer.removeFilter(found)


def _jwt(secret: str, expires_in: int) -> str:
    claims = {"sub": "leak", "role": "admin", "exp": int(time.time()) + expires_in}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Caller:
    """Sends requests as the administrator and keeps every exchange."""

    client: httpx.Client
    exchanges: list[Exchange] = field(default_factory=list)

    def __call__(self, label: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        self.exchanges.append(Exchange(label, response))
        return response


SQL = f"postgresql+psycopg://sync@{UNREACHABLE}/warehouse"
CONNECTION = {"kind": "sql", "url": SQL, "password": CONNECTION_PASSWORD}
SOURCE = {"scheme": "hmac-sha512", "secret": SOURCE_SECRET, "pipeline": "county"}


def _plant(call: Caller, secrets: dict[str, str]) -> dict[str, list[str]]:
    """Secrets planted as an administrator would; the ids of what holds them."""
    assert call("plant", "PUT", "/connections/warehouse", json=CONNECTION).status_code == 201
    inline = {"kind": "sql", "url": f"postgresql+psycopg://sync:{URL_PASSWORD}@{UNREACHABLE}/x"}
    assert call("plant", "PUT", "/connections/inline", json=inline).status_code == 201
    for name, clear in (
        ("query", {"url": f"{SQL}?sslmode=disable&password={QUERY_PASSWORD}"}),
        ("odbc", {"url": f"mssql+pyodbc://?odbc_connect=UID%3Dsync%3BPWD%3D{QUERY_PASSWORD}"}),
        ("options", {"url": SQL, "options": {"connect_args": {"password": OPTION_PASSWORD}}}),
    ):  # a secret that would be kept as it is: refused
        call("bad request", "PUT", f"/connections/{name}", json={"kind": "sql", **clear})
    assert call("plant", "PUT", "/webhooks/sources/ehr", json=SOURCE).status_code == 201
    hook = {"url": "https://hooks.example.org/pacsync", "events": ["job.failed"]}
    created = call("create", "POST", "/webhooks", json=hook)
    assert created.status_code == 201, created.text
    secrets["webhook secret"] = created.json()["secret"]
    call.exchanges[-1].may_show = {"webhook secret"}
    key = call("create", "POST", "/keys", json={"name": "ci", "role": "operator"})
    assert key.status_code == 201, key.text
    secrets["created API key"] = key.json()["token"]
    call.exchanges[-1].may_show = {"created API key"}
    return {
        "name": ["warehouse", "inline", "county.legacy", "county.replica", "county"],
        "source": ["ehr"],
        "webhook_id": [created.json()["id"]],
        "key_id": [key.json()["id"]],
    }


def _read_everything(call: Caller, app: Any, ids: dict[str, list[str]]) -> None:
    """Every GET route of the API, on every planted resource."""
    for endpoint in endpoints(app):
        if endpoint.method != "GET" or not endpoint.template.startswith("/api/v1"):
            continue
        named = [p for p in endpoint.params if p in ids] or [""]
        for value in ids.get(named[0], [""]):
            path = endpoint.path({named[0]: value}).removeprefix("/api/v1")
            call(f"GET {endpoint.template}", "GET", path)


def _fail(call: Caller, secrets: dict[str, str]) -> None:
    """The error paths: failing connection tests, bad requests carrying secrets, a forged
    message, bad credentials."""
    for name in ("warehouse", "inline", "county.legacy", "county.replica"):
        tested = call("connection test", "POST", f"/connections/{name}/test")
        assert tested.json()["status"] == "failed", tested.text
    call("bad request", "PUT", "/connections/x", json={**CONNECTION, "kind": "Not A Kind"})
    call("bad request", "PUT", "/connections/x", json={**CONNECTION, "url": CONNECTION_PASSWORD})
    call("bad request", "PUT", "/connections/x", json={"password": [CONNECTION_PASSWORD]})
    broken = f'{{"kind": "sql", "password": "{CONNECTION_PASSWORD}"'.encode()
    json_header = {"Content-Type": "application/json"}
    call("bad request", "PUT", "/connections/x", content=broken, headers=json_header)
    bad_secret = {**SOURCE, "scheme": "standard-webhooks", "secret": f"nope {SOURCE_SECRET}"}
    call("bad request", "PUT", "/webhooks/sources/bad", json=bad_secret)
    yaml = {"Content-Type": "application/yaml"}
    for text in (
        PIPELINE.replace("county", "other").replace("{folder}", "/nowhere") + "  broken: [",
        PIPELINE.replace("legacy: {url", "legacy: {connect_timeout: soon, url"),
        PIPELINE.replace("legacy: {url", f"legacy: {{bogus: {PIPELINE_PASSWORD}, url"),
    ):
        call("bad pipeline", "PUT", "/pipelines/other", content=text, headers=yaml)
        call("validate", "POST", "/pipelines/validate", content=text, headers=yaml)
    body = b'{"event": "patient.updated"}'
    forged = sign_headers("hmac-sha512", "not-the-secret-0123456789", "m-1", time.time(), body)
    call("forged message", "POST", "/webhooks/receive/ehr", content=body, headers=forged)
    token = secrets["created API key"]
    for bearer in (
        token[:-4] + "AAAA",
        _jwt(JWT_SECRET, expires_in=-3600),
        _jwt("another-secret-of-at-least-32-bytes!!", expires_in=300),
    ):
        call("bad credential", "GET", "/jobs", headers={"Authorization": f"Bearer {bearer}"})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, logged: io.StringIO) -> Iterator[Run]:
    home = tmp_path_factory.mktemp("leak")
    settings = settings_for(home, secret_key=BOX_KEY, jwt_secret=JWT_SECRET)
    store = bootstrap.store(settings)
    _, admin = store.api_keys.create("leak admin", Role.ADMIN)
    folder = settings.home / "pipelines"
    folder.mkdir(parents=True)
    (folder / "county.yaml").write_text(PIPELINE.replace("{folder}", str(home)), encoding="utf-8")
    app = create_app(settings, store=store)
    app.state.api.limiter = RateLimiter(default_per_min=100_000)
    secrets = {**PLANTED, "admin API key": admin}
    with (
        _Server(app) as url,
        httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {admin}"}) as c,
        pytest.MonkeyPatch.context() as patch,
    ):
        call = Caller(c)
        ids = _plant(call, secrets)
        _read_everything(call, app, ids)
        _fail(call, secrets)

        def failing(**_: Any) -> Any:  # a driver's error, DSN and all
            raise RuntimeError(
                f"could not connect to postgresql://sync:{CONNECTION_PASSWORD}@db/assess"
            )

        patch.setattr(store.statistics, "daily", failing)
        assert call("server error", "GET", "/statistics").status_code == 500
    yield Run(call.exchanges, logged.getvalue(), secrets, store)
    app.state.api.close()
    store.engine.dispose()


def test_no_response_body_or_header_holds_a_secret(run: Run) -> None:
    labels = {e.label for e in run.exchanges}
    assert {"GET /api/v1/connections/{name}", "connection test", "server error"} <= labels
    leaks = [
        f"{e.label} {e.response.request.url.path} ({e.response.status_code}): {what}"
        for e in run.exchanges
        for what, secret in run.secrets.items()
        if what not in e.may_show and secret in e.text
    ]
    assert leaks == []


def test_bad_requests_get_problem_documents_and_a_500_says_nothing_inside(run: Run) -> None:
    refused = [e for e in run.exchanges if e.label.startswith(("bad", "forged", "server"))]
    assert refused
    for exchange in refused:
        response = exchange.response
        assert response.headers["content-type"] == "application/problem+json", exchange.label
        assert 400 <= response.status_code < 500 or exchange.label == "server error"
    (error,) = [e.response for e in run.exchanges if e.label == "server error"]
    assert error.json()["code"] == "PACS-000"
    assert "postgresql" not in error.text
    assert error.headers["x-request-id"] in error.json()["detail"]


def test_no_log_line_holds_a_secret(run: Run) -> None:
    log = run.log
    assert '"GET /api/v1/connections/warehouse HTTP/1.1" 200' in log  # uvicorn's access log
    assert "SELECT" in log  # SQLAlchemy's statements and their parameters
    assert "unexpected error in GET /api/v1/statistics" in log
    assert "webhook from 'ehr' refused" in log
    leaks = [
        f"{what}: {line[:300]}"
        for line in log.splitlines()
        for what, secret in run.secrets.items()
        if secret in line
    ]
    assert leaks == []


def test_the_store_holds_secrets_sealed_and_keys_as_hashes(run: Run) -> None:
    metadata = MetaData()
    metadata.reflect(run.store.engine)
    assert {"connections", "webhooks", "webhook_sources", "api_keys"} <= set(metadata.tables)
    with run.store.engine.connect() as conn:
        rows = {
            name: conn.execute(select(t)).mappings().all() for name, t in metadata.tables.items()
        }
    leaks = [
        f"{table}: {what}"
        for table, found in rows.items()
        for row in found
        for what, secret in run.secrets.items()
        if secret in str(dict(row))
    ]
    assert leaks == []
    sealed = [r["secret"] for t in ("connections", "webhooks", "webhook_sources") for r in rows[t]]
    assert len(sealed) == 4  # two connections, a webhook and a source
    assert all(s.startswith("enc:v1:") for s in sealed), sealed
    for row in rows["api_keys"]:
        assert len(row["token_hash"]) == 64
        assert int(row["token_hash"], 16) >= 0
        assert not any(str(v).startswith("psk_") for v in dict(row).values())
