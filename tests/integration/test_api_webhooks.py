"""Webhooks for real on loopback: ``pacsync serve`` and ``pacsync worker`` processes on a
PostgreSQL store, and an HTTP receiver in this process.

Outbound: webhooks made through the API receive a sync job's events, signed so
that the Standard Webhooks reference package verifies them; a receiver failing
twice gets the same message a third time and it ends delivered after 3 attempts;
a receiver refusing a message gets it once, and the delivery is parked.
Inbound: a message signed per each scheme queues the source's pipeline; a bad
signature, an old timestamp or a replay is refused and writes nothing.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.db.tables import webhook_receipts
from pacsync.security.signatures import new_webhook_secret, sign_headers
from processes import KEY, Process, free_port, wait_until_up

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PIPELINE = "property-assessment"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """An HTTP server on loopback recording every POST.  ``/flaky`` answers 503 to the
    first two tries of each message (by webhook-id), ``/refusing`` always 400, any other
    path 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.answer(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.received.append(Received(path, headers, body, time.time()))
            tries = sum(
                1
                for r in self.received
                if r.path == path and r.headers.get("webhook-id") == headers.get("webhook-id")
            )
        if path == "/flaky":
            return 503 if tries <= 2 else 200
        return 400 if path == "/refusing" else 200

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def site(pacsync: Any, recipe: Any, new_pg_url: Any) -> Any:
    """A PostgreSQL store shared by the processes (one secret key), and the recipe's
    legacy database (small) and empty warehouse."""
    legacy, warehouse, store = new_pg_url(), new_pg_url(), new_pg_url()
    recipe.generate.generate(legacy, scale=0.01, seed=7)
    pacsync.env.update(
        {
            "LEGACY_DB_URL": legacy,
            "WAREHOUSE_URL": warehouse,
            "PACSYNC_DATABASE_URL": store,
            "PACSYNC_SECRET_KEY": secrets.token_hex(32),
            "PACSYNC_WEBHOOK_BACKOFF_S": "0.3",
        }
    )
    return pacsync


@pytest.fixture
def api(site: Any, recipe: Any) -> Iterator[httpx.Client]:
    """``pacsync serve`` on a free port, with the recipe's pipeline uploaded; a client
    with the admin key it printed."""
    port = free_port()
    server = Process(site.start("serve", "--port", str(port)))
    base = f"http://127.0.0.1:{port}"
    try:
        token = server.wait_for(KEY.pattern).group(1)
        wait_until_up(base, server)
        client = httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        saved = client.put(
            f"/pipelines/{PIPELINE}",
            content=recipe.pipeline.read_bytes(),
            headers={"Content-Type": "application/yaml"},
        )
        assert saved.status_code == 201, saved.text
        yield client
        client.close()
    finally:
        server.stop()


@pytest.fixture
def store(site: Any) -> Iterator[bootstrap.Store]:
    """The same store, opened in this process."""
    env = site.env
    opened = bootstrap.store(
        Settings(database_url=env["PACSYNC_DATABASE_URL"], secret_key=env["PACSYNC_SECRET_KEY"])
    )
    yield opened
    opened.engine.dispose()


def _webhook(api: httpx.Client, url: str, events: list[str]) -> dict[str, Any]:
    made = api.post("/webhooks", json={"url": url, "events": events, "pipelines": [PIPELINE]})
    assert made.status_code == 201, made.text
    hook: dict[str, Any] = made.json()
    return hook


def _settled(api: httpx.Client, hooks: list[str], timeout: float = 90) -> dict[str, list[Any]]:
    """Each webhook's deliveries once none is pending."""
    deadline = time.monotonic() + timeout
    while True:
        found = {h: api.get(f"/webhooks/{h}/deliveries").json() for h in hooks}
        if all(d and all(x["status"] != "pending" for x in d) for d in found.values()):
            return found
        assert time.monotonic() < deadline, f"deliveries still pending: {found}"
        time.sleep(0.3)


def _until_ended(api: httpx.Client, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s"
        time.sleep(0.3)


def test_a_sync_jobs_events_arrive_signed_retried_and_parked(
    site: Any, api: httpx.Client, receiver: Receiver
) -> None:
    steady = _webhook(api, f"{receiver.url}/steady", ["job.*"])
    flaky = _webhook(api, f"{receiver.url}/flaky", ["job.completed"])
    refusing = _webhook(api, f"{receiver.url}/refusing", ["job.started"])
    worker = Process(
        site.start(
            "worker", "--id", "hooks", "--queues", "sync-jobs", "--queues", "webhook-delivery"
        )
    )
    try:
        worker.wait_for(r"worker hooks ready")
        started = api.post("/sync/start", json={"pipeline": PIPELINE, "sync_type": "full"})
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        assert _until_ended(api, job_id)["status"] == "succeeded"
        settled = _settled(api, [steady["id"], flaky["id"], refusing["id"]])
    finally:
        worker.stop()

    # every message verifies with the reference package, and says what happened
    events = {}
    for got in receiver.at("/steady"):
        payload = Webhook(steady["secret"]).verify(got.body, got.headers)
        assert payload == json.loads(got.body)
        assert payload["data"]["job_id"] == job_id
        assert payload["data"]["pipeline"] == PIPELINE
        events[payload["type"]] = payload
    assert set(events) == {"job.started", "job.completed"}
    completed = events["job.completed"]["data"]
    assert completed["status"] == "succeeded"
    assert completed["entities"]["properties"]["inserted"] > 0
    assert [(d["status"], d["attempts"]) for d in settled[steady["id"]]] == [("delivered", 1)] * 2

    # failing twice then succeeding: the same message three times, delivered after 3 attempts
    tries = receiver.at("/flaky")
    assert len(tries) == 3
    assert len({t.headers["webhook-id"] for t in tries}) == 1
    for attempt in tries:
        assert Webhook(flaky["secret"]).verify(attempt.body, attempt.headers)["type"] == (
            "job.completed"
        )
    assert tries[2].at - tries[0].at >= 0.3 * 0.75 + 1.2 * 0.75  # two backoff waits
    (delivery,) = settled[flaky["id"]]
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "delivered",
        3,
        200,
    )
    assert delivery["message_id"] == tries[0].headers["webhook-id"]

    # refused: sent once, failed, parked as a dead letter
    assert len(receiver.at("/refusing")) == 1
    (refused,) = settled[refusing["id"]]
    assert (refused["status"], refused["attempts"], refused["response_status"]) == (
        "failed",
        1,
        400,
    )
    assert "PACS-303" in refused["error"]
    letters = api.get(
        "/dead-letters", params={"pipeline": f"webhook:{refusing['id']}", "status": "all"}
    ).json()
    (letter,) = letters["items"]
    assert (letter["kind"], letter["error_code"]) == ("job", "PACS-303")


SOURCE_SECRETS = {
    "standard-webhooks": new_webhook_secret(),
    "github": "github-shared-secret-0123456789",
    "hmac-sha512": "hmac-shared-secret-0123456789",
}
BODY = b'{"event":"patient.updated","id":"p-17"}'


def _written(api: httpx.Client, store: bootstrap.Store) -> tuple[int, int, int]:
    """Jobs, replay receipts and webhook.receive audit entries."""
    with store.engine.connect() as conn:
        receipts = conn.execute(select(func.count()).select_from(webhook_receipts)).scalar_one()
    jobs = api.get("/jobs").json()["total"]
    audited = api.get("/audit", params={"action": "webhook.receive"}).json()["total"]
    return jobs, receipts, audited


@pytest.mark.parametrize("scheme", list(SOURCE_SECRETS))
def test_inbound_messages_are_verified_by_their_scheme(
    api: httpx.Client, store: bootstrap.Store, scheme: str
) -> None:
    secret = SOURCE_SECRETS[scheme]
    source = {"scheme": scheme, "secret": secret, "pipeline": PIPELINE, "entities": ["owners"]}
    assert api.put(f"/webhooks/sources/{scheme}", json=source).status_code == 201
    receive = httpx.Client(base_url=str(api.base_url), timeout=30)  # no bearer token
    try:

        def send(headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
            return receive.post(f"/webhooks/receive/{scheme}", content=body, headers=headers)

        signed = sign_headers(scheme, secret, f"{scheme}-msg-1", time.time(), BODY)
        accepted = send(signed)
        assert accepted.status_code == 202, accepted.text
        job = api.get(f"/jobs/{accepted.json()['job_id']}").json()
        assert (job["pipeline"], job["trigger"], job["entities"], job["status"]) == (
            PIPELINE,
            "webhook",
            ["owners"],
            "queued",
        )
        before = _written(api, store)
        assert before == (1, 1, 1)

        replay = send(signed)
        assert (replay.status_code, replay.json()["code"]) == (409, "PACS-107")
        forged = sign_headers(scheme, new_webhook_secret(), f"{scheme}-msg-2", time.time(), BODY)
        bad = send(forged)
        assert (bad.status_code, bad.json()["code"]) == (401, "PACS-002")
        assert send(signed, body=BODY + b"\n").status_code == 401
        if scheme != "github":  # GitHub's signature carries no timestamp
            old = sign_headers(scheme, secret, f"{scheme}-msg-3", time.time() - 600, BODY)
            stale = send(old)
            assert stale.status_code == 401
            assert "old" in stale.json()["detail"]
        assert _written(api, store) == before
    finally:
        receive.close()
