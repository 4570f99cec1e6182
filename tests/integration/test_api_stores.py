"""The REST API's stores on PostgreSQL: migration 0003 and every store, races included.

Racing callers each get their own engine, as separate API processes would.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.engine import make_url

from pacsync.connectors.sql.engine import make_engine
from pacsync.db.api_keys import ApiKeyStore
from pacsync.db.audit import AuditLog
from pacsync.db.conflicts import ConflictStore
from pacsync.db.connections import ConnectionStore
from pacsync.db.statistics import StatisticsStore
from pacsync.db.store import HEAD, current_revision, migrate, open_store
from pacsync.db.tables import connections, daily_statistics, metadata, webhooks
from pacsync.db.webhook_sources import WebhookSourceStore
from pacsync.db.webhooks import WebhookStore
from pacsync.domain.access import Role
from pacsync.errors import InvalidState
from pacsync.security import signatures
from pacsync.security.secrets import SecretBox, is_sealed

pytestmark = pytest.mark.integration

API_TABLES = {
    "api_keys",
    "connections",
    "conflicts",
    "webhooks",
    "webhook_deliveries",
    "webhook_sources",
    "webhook_receipts",
}


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = open_store(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(bytes(range(32)))


def race(url: str, callers: int, work: Callable[[Engine], Any]) -> list[Any]:
    """``work`` from ``callers`` threads at once, each on its own engine."""
    results: list[Any] = []
    barrier = threading.Barrier(callers)

    def run() -> None:
        engine = make_engine(url)
        try:
            barrier.wait()
            results.append(work(engine))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_the_migrations_build_the_tables_the_code_describes(engine: Engine) -> None:
    assert current_revision(engine) == HEAD
    assert set(inspect(engine).get_table_names()) >= API_TABLES
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    migrate(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine, "head")
    assert set(inspect(engine).get_table_names()) >= API_TABLES


def test_api_keys_on_postgresql(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    view, token = store.create("ci", Role.ADMIN, rate_limit_per_min=60)
    verified = store.verify(token)
    assert verified is not None
    assert verified.principal().role is Role.ADMIN
    assert verified.last_used_at is not None
    assert store.verify(token.replace(token[-3:], "AAA")) is None
    assert store.revoke(view.id)
    assert store.verify(token) is None
    assert store.count_active() == 0


def test_connections_on_postgresql(engine: Engine, box: SecretBox) -> None:
    store = ConnectionStore(engine, box)
    view = store.put("warehouse", "sql", "postgresql+psycopg://sync:s3cret@db/wh", {"pool": 5})
    assert (view.url, view.password_set, view.options) == (
        "postgresql+psycopg://sync@db/wh",
        True,
        {"pool": 5},
    )
    with engine.connect() as conn:
        assert is_sealed(conn.execute(select(connections.c.secret)).scalar_one())
    assert make_url(store.resolved_url("warehouse")).password == "s3cret"
    assert store.delete("warehouse")


def test_conflicts_on_postgresql_are_decided_once_under_a_race(engine: Engine) -> None:
    store = ConflictStore(engine)
    fields = [{"field": "phone", "local": "1", "remote": "2", "base": "0"}]
    conflict_id = store.record("ehr", "patients", "17", fields)
    store.record("ehr", "patients", "18", fields)
    assert store.list(status="open", pipeline="ehr", limit=1)[1] == 2

    def decide(racer: Engine) -> str:
        try:
            ConflictStore(racer).resolve(conflict_id, "use_remote", actor="racer")
        except InvalidState:
            return "lost"
        return "won"

    url = engine.url.render_as_string(hide_password=False)
    assert sorted(race(url, 4, decide)) == ["lost", "lost", "lost", "won"]
    decided = store.get(conflict_id)
    assert decided is not None
    assert (decided.status, decided.resolved_value) == ("resolved", {"phone": "2"})
    assert store.counts() == {"open": 1, "resolved": 1}


def test_webhooks_on_postgresql(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    hook, secret = store.create("https://hooks.example/", ["job.*"], ["ehr"])
    with engine.connect() as conn:
        assert is_sealed(conn.execute(select(webhooks.c.secret)).scalar_one())
    (subscriber,) = store.subscribers("job.completed", "ehr")
    assert subscriber.secret == secret
    assert store.subscribers("job.completed", "pms") == []
    assert store.set_active(hook.id, False)
    assert store.subscribers("job.completed", "ehr") == []
    delivery = store.add_delivery(hook.id, "job.completed", {"job": "j1"})
    store.mark_failed(delivery.id, "HTTP 503", response_status=503, response_body="busy")
    (logged,) = store.deliveries(hook.id)
    assert (logged.status, logged.attempts, logged.response_status) == ("failed", 1, 503)


def test_a_replayed_message_loses_even_when_both_copies_arrive_at_once(
    engine: Engine, box: SecretBox
) -> None:
    store = WebhookSourceStore(engine, box)
    _, secret = store.put_source("lab", "hmac-sha512", pipeline="ehr")
    assert secret is not None
    body = b'{"result": 1}'
    headers = signatures.sign_headers("hmac-sha512", secret, "req-1", time.time(), body)

    def deliver(racer: Engine) -> str:
        try:
            WebhookSourceStore(racer, box).accept("lab", headers, body)
        except InvalidState:
            return "replay"
        return "accepted"

    url = engine.url.render_as_string(hide_password=False)
    assert sorted(race(url, 5, deliver)) == ["accepted"] + ["replay"] * 4


def test_audit_and_statistics_on_postgresql(engine: Engine) -> None:
    log = AuditLog(engine)
    log.record(actor="key:a", action="jobs.cancel", target="j1", outcome="ok")
    log.record(actor="key:a", action="keys.create", target="k1", outcome="ok")
    items, total = log.query(action="jobs.*", since=dt.datetime(2000, 1, 1))
    assert (total, [i["target"] for i in items]) == (1, ["j1"])
    day = dt.date(2026, 11, 23)
    with engine.begin() as conn:
        conn.execute(
            insert(daily_statistics).values(
                day=day,
                pipeline="ehr",
                jobs=2,
                succeeded=1,
                failed=1,
                records=10,
                bytes=0,
                duration_s=4.0,
            )
        )
    stats = StatisticsStore(engine)
    (row,) = stats.daily(pipeline="ehr", since=day, until=day)
    assert (row.jobs, row.mean_duration_s) == (2, 2.0)
    (total_row,) = stats.totals()
    assert (total_row.pipeline, total_row.records) == ("ehr", 10)
