"""Events to webhooks: one delivery and one queued job per subscribed webhook, the
dead-letter and conflict announcements, a sync job's start and end, and the store
side of a delivery."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pacsync import bootstrap
from pacsync.bootstrap.events import AnnouncedDeadLetters, EventSink, StoreDeliveryLog
from pacsync.bootstrap.sync_steps import SqlSyncSteps
from pacsync.config import Settings
from pacsync.connectors.memory import MemoryJobContext
from pacsync.domain.records import Rejected, RowError
from pacsync.errors import StoreUnavailable
from pacsync.jobs.queues import WEBHOOKS
from pacsync.jobs.request import JobRequest
from pacsync.jobs.sync_job import run_sync_job

PIPELINE = """\
version: 1
name: county
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
"""


class FakeClient:
    """The job engine's client as the sink uses it: enqueue, recorded (or refused)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.queued: list[tuple[str, JobRequest]] = []

    def enqueue(self, job_id: str, request: JobRequest) -> str:
        if self.refuse:
            raise StoreUnavailable("job engine: database is locked")
        self.queued.append((job_id, request))
        return job_id


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A store under ``tmp_path``, whatever the environment says."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=tmp_path / "home",
        database_url=None,
        pipelines_dir=None,
        secret_key=None,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[bootstrap.Store]:
    store = bootstrap.store(settings)
    yield store
    store.engine.dispose()


def _sink(settings: Settings, store: bootstrap.Store, client: FakeClient) -> EventSink:
    return EventSink(settings, store, client=lambda: client)  # type: ignore[arg-type, return-value]


def test_an_event_becomes_one_delivery_and_job_per_subscribed_webhook(
    settings: Settings, store: bootstrap.Store
) -> None:
    hooks = store.webhooks
    every, _ = hooks.create("https://a.example.org/", ["*"])
    county, _ = hooks.create("https://b.example.org/", ["job.*"], pipelines=["county"])
    other, _ = hooks.create("https://c.example.org/", ["job.failed"], pipelines=["other"])
    quiet, _ = hooks.create("https://d.example.org/", ["study.indexed"])
    client = FakeClient()
    ids = _sink(settings, store, client).emit("job.failed", {"job_id": "j1"}, "county")
    assert len(ids) == 2
    made = {hooks.delivery(i).webhook_id: hooks.delivery(i) for i in ids}  # type: ignore[union-attr]
    assert set(made) == {every.id, county.id}
    payload = made[every.id].payload
    assert payload["type"] == "job.failed"
    assert payload["data"] == {"pipeline": "county", "job_id": "j1"}
    assert payload["timestamp"].endswith("Z")
    assert made[every.id].message_id != made[county.id].message_id
    assert {r.partition_key for _, r in client.queued} == {every.id, county.id}
    for _, request in client.queued:
        assert (request.kind, request.queue, request.trigger) == ("webhook", WEBHOOKS, "event")
        assert hooks.delivery(request.args["delivery_id"]) is not None
    assert hooks.deliveries(other.id) == hooks.deliveries(quiet.id) == []


def test_a_delivery_the_engine_refuses_is_marked_failed_and_the_caller_goes_on(
    settings: Settings, store: bootstrap.Store
) -> None:
    hook, _ = store.webhooks.create("https://a.example.org/", ["*"])
    assert _sink(settings, store, FakeClient(refuse=True)).emit("job.started", {}) == []
    (delivery,) = store.webhooks.deliveries(hook.id)
    assert delivery.status == "failed"
    assert delivery.error is not None
    assert delivery.error.startswith("not queued: PACS-201")
    client = FakeClient()
    assert _sink(settings, store, client).redeliver(hook.id) == [delivery.id]
    assert [r.trigger for _, r in client.queued] == ["retry"]


def test_newly_parked_records_are_announced_once(
    settings: Settings, store: bootstrap.Store
) -> None:
    hook, _ = store.webhooks.create("https://a.example.org/", ["dead_letter.created"])
    letters = AnnouncedDeadLetters(store.dead_letters, _sink(settings, store, FakeClient()))
    rejected = [
        Rejected((k,), f"fp{k}", {"id": k}, RowError("year", "range", "too old")) for k in (1, 2)
    ]
    assert letters.park("job-1", "county", "parcels", rejected) == 2
    assert letters.park("job-1", "county", "parcels", rejected) == 0  # known: not again
    (delivery,) = store.webhooks.deliveries(hook.id)
    assert delivery.payload["data"] == {
        "pipeline": "county",
        "kind": "record",
        "job_id": "job-1",
        "entity": "parcels",
        "count": 2,
        "record_keys": ["[1]", "[2]"],
        "rules": ["range"],
    }
    assert letters.open_keys("county", "parcels") == {(1,), (2,)}


def test_a_recorded_conflict_is_announced(settings: Settings, store: bootstrap.Store) -> None:
    hook, _ = store.webhooks.create("https://a.example.org/", ["conflict.detected"])
    fields = [{"field": "phone", "local": "1", "remote": "2", "base": "0"}]
    sink = _sink(settings, store, FakeClient())
    conflict_id = sink.record_conflict("pms", "patients", "[7]", fields)
    assert store.conflicts.get(conflict_id) is not None
    (delivery,) = store.webhooks.deliveries(hook.id)
    assert delivery.payload["data"] == {
        "pipeline": "pms",
        "conflict_id": conflict_id,
        "entity": "patients",
        "record_key": "[7]",
        "fields": ["phone"],
    }


def test_the_delivery_log_opens_the_secret_and_skips_disabled_webhooks(
    store: bootstrap.Store,
) -> None:
    hook, secret = store.webhooks.create("https://a.example.org/", ["*"])
    delivery = store.webhooks.add_delivery(hook.id, "job.started", {"type": "job.started"})
    log = StoreDeliveryLog(store)
    message = log.message(delivery.id)
    assert message is not None
    assert (message.url, message.secret, message.message_id) == (
        hook.url,
        secret,
        delivery.message_id,
    )
    assert secret not in repr(message)
    log.failed(delivery.id, "PACS-302 answered 503", 503, "busy", None)
    assert store.webhooks.delivery(delivery.id).status == "failed"  # type: ignore[union-attr]
    store.webhooks.requeue(delivery.id)
    store.webhooks.set_active(hook.id, False)
    assert log.message(delivery.id) is None
    found = store.webhooks.delivery(delivery.id)
    assert found is not None
    assert (found.status, found.error) == ("failed", "the webhook is disabled")
    assert log.message(999) is None


def _legacy(folder: Path) -> None:
    with sqlite3.connect(folder / "legacy.db") as db:
        db.execute("CREATE TABLE Parcel (ParcelID INTEGER PRIMARY KEY, Address TEXT)")
        db.executemany("INSERT INTO Parcel VALUES (?, ?)", [(1, " 1 Main St "), (2, "2 Elm")])
    db.close()


def test_a_sync_job_announces_its_start_and_its_end(
    settings: Settings, store: bootstrap.Store
) -> None:
    folder = settings.home / "pipelines"
    folder.mkdir(parents=True)
    (folder / "county.yaml").write_text(PIPELINE.format(folder=settings.home), encoding="utf-8")
    _legacy(settings.home)
    hook, _ = store.webhooks.create("https://a.example.org/", ["job.*"], pipelines=["county"])
    client = FakeClient()
    steps = SqlSyncSteps(settings, store, executor_id="test", events=_sink(settings, store, client))
    request = JobRequest(kind="sync", pipeline="county", mode="full")
    job_id = store.jobs.create(kind="sync", pipeline="county", mode="full", entities=[])
    outcome: dict[str, Any] = run_sync_job(MemoryJobContext(job_id), steps, request)
    assert outcome["status"] == "succeeded"
    started, ended = reversed(store.webhooks.deliveries(hook.id))
    assert started.event == "job.started"
    assert started.payload["data"] == {
        "pipeline": "county",
        "job_id": job_id,
        "mode": "full",
        "entities": [],
        "trigger": "manual",
    }
    assert ended.event == "job.completed"
    data = ended.payload["data"]
    assert (data["job_id"], data["status"], data["attempts"], data["error"]) == (
        job_id,
        "succeeded",
        1,
        None,
    )
    assert data["entities"]["parcels"]["inserted"] == 2
    assert len(client.queued) == 2
