"""``/metrics``: Prometheus text read from the store at scrape time."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from clinical_messages import incoming
from pacsync.db.circuits import CircuitStore
from pacsync.db.messages import MessageStore
from pacsync.domain.access import Role
from pacsync.domain.circuit import CircuitState
from pacsync.domain.records import Rejected, RowError
from pacsync.errors import SchemaMismatch
from pacsync.ports import Settled

from .conftest import Api, problem


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_need_a_viewer(api: Api) -> None:
    problem(api.get("/metrics", as_=None), 401, "PACS-002")


def test_metrics_count_what_the_store_holds(api: Api) -> None:
    api.pipeline_file("county")
    queued = api.post("/sync/start", json={"pipeline": "county"}).json()["job_id"]
    failed = api.store.jobs.create(kind="sync", pipeline="county", mode="full", entities=[])
    api.store.jobs.start(failed)
    api.store.jobs.finish(failed, "failed", {}, SchemaMismatch("no table"), "parcels")
    api.store.dead_letters.park(
        None, "county", "parcels", [Rejected((1,), "fp", {"a": 1}, RowError("a", "range", "x"))]
    )
    CircuitStore(api.store.engine).compare_and_set(
        None, CircuitState(connection="legacy", state="open", failures=5)
    )
    response = api.get("/metrics", as_=Role.VIEWER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(response.text)
    assert samples[("pacsync_jobs", (("status", "queued"),))] == 1
    assert samples[("pacsync_jobs", (("status", "failed"),))] == 1
    assert samples[("pacsync_jobs", (("status", "running"),))] == 0
    assert samples[("pacsync_job_errors_total", (("code", "PACS-003"),))] == 1
    assert samples[("pacsync_queue_jobs", (("queue", "sync-jobs"), ("state", "waiting")))] == 1
    assert samples[("pacsync_circuit_state", (("connection", "legacy"), ("state", "open")))] == 1
    assert samples[("pacsync_circuit_state", (("connection", "legacy"), ("state", "closed")))] == 0
    assert samples[("pacsync_circuit_failures", (("connection", "legacy"),))] == 5
    assert samples[("pacsync_dead_letters_open", (("pipeline", "county"),))] == 1
    assert queued


def test_request_latency_is_observed_by_route_template(api: Api) -> None:
    """The template as its router declares it (every API route is under /api/v1)."""
    api.get("/jobs/0b6f0e0c", as_=Role.VIEWER)
    api.get("/jobs/1c7f0e0c", as_=Role.VIEWER)
    samples = _samples(api.get("/metrics", as_=Role.VIEWER).text)
    key = (
        "pacsync_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "404")),
    )
    assert samples[key] == 2


def test_every_part_of_the_store_was_read(api: Api) -> None:
    samples = _samples(api.get("/metrics", as_=Role.VIEWER).text)
    parts = {
        dict(labels)["part"]: v
        for (name, labels), v in samples.items()
        if name == "pacsync_scrape_ok"
    }
    assert parts == dict.fromkeys(
        ("jobs", "statistics", "queues", "circuits", "dead_letters", "messages"), 1.0
    )


def test_messages_are_counted_per_feed_by_state_and_answer(api: Api) -> None:
    journal = MessageStore(api.store.engine)
    journal.keep([incoming("1"), incoming("2"), incoming("3", accepted=False)])
    (first, _) = journal.pending(None, 10)
    journal.settle([Settled(first.id, "P1")], dt.datetime(2026, 1, 1))
    samples = _samples(api.get("/metrics", as_=Role.VIEWER).text)
    stored = "pacsync_hl7_messages_stored"
    assert samples[(stored, (("feed", "mllp"), ("state", "processed")))] == 1
    assert samples[(stored, (("feed", "mllp"), ("state", "received")))] == 1
    assert samples[(stored, (("feed", "mllp"), ("state", "rejected")))] == 1
    answered = "pacsync_hl7_messages_answered"
    assert samples[(answered, (("ack", "AA"), ("feed", "mllp")))] == 2
    assert samples[(answered, (("ack", "AR"), ("feed", "mllp")))] == 1
    assert samples[("pacsync_hl7_oldest_pending_seconds", (("feed", "mllp"),))] >= 0


def test_processing_latency_is_given_per_feed_over_the_last_processed_messages(api: Api) -> None:
    journal = MessageStore(api.store.engine)
    kept = journal.keep([incoming(str(n)) for n in range(20)])
    received = journal.get(kept[0].id)
    assert received is not None
    for number, k in enumerate(kept):  # the n-th message processed n + 1 seconds after receipt
        at = received.received_at + dt.timedelta(seconds=number + 1)
        journal.settle([Settled(k.id, "P1")], at)
    samples = _samples(api.get("/metrics", as_=Role.VIEWER).text)
    name = "pacsync_hl7_processing_seconds"
    assert samples[(name, (("feed", "mllp"), ("quantile", "0.5")))] == 11
    assert samples[(name, (("feed", "mllp"), ("quantile", "0.95")))] == 20
    assert samples[(name, (("feed", "mllp"), ("quantile", "1")))] == 20
