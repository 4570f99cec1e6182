"""The property-assessment recipe end to end, through the CLI, on real databases.

legacy → target: MariaDB → PostgreSQL, PostgreSQL → PostgreSQL and SQLite → SQLite.
For each, a full sync, a day of legacy edits (the recipe's mutate.py), and an
incremental sync with hash_diff or with cursor.  After each run the target is
compared with the source three ways: the rows mapped by hand for a few fields,
the reconciliation computed in this process, and ``pacsync reconcile``'s exit
status.  The counts ``pacsync run`` prints are checked against what mutate.py
reports doing (less what dead letters explain).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .assessment import (
    ENTITIES,
    FINGERPRINT,
    STRATEGY_VARIABLES,
    Deployment,
    Key,
    Rows,
    engine,
    legacy_rows,
    mismatches,
    run_summary,
    target_rows,
)

pytestmark = pytest.mark.integration

SCALE = 0.05  # 620 parcels, 5,390 legacy rows
NOW = datetime(2024, 6, 1)  # the generated rows were last modified before this
LATER = datetime(2024, 6, 2, 9, 30, 15)  # the day of edits
VALID_STATES = {"WA", "OR", "ID"}


@pytest.fixture(params=["mariadb-to-postgresql", "postgresql-to-postgresql", "sqlite-to-sqlite"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(legacy URL, target URL): fresh, empty databases."""
    if request.param == "mariadb-to-postgresql":
        return request.getfixturevalue("mariadb_url"), request.getfixturevalue("pg_url")
    if request.param == "postgresql-to-postgresql":
        return request.getfixturevalue("new_pg_url")(), request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'legacy.db'}", f"sqlite:///{tmp_path / 'warehouse.db'}"


@dataclass
class Sync:
    """One legacy database, one target and the recipe's pipeline run between them."""

    recipe: Any
    pacsync: Any
    deployment: Deployment
    legacy_url: str
    target_url: str

    def run(self, *options: str) -> dict[str, dict[str, Any]]:
        """``pacsync run``; the per-entity counts it printed (checked against the store)."""
        done = self.pacsync("run", self.deployment.pipeline, "--quiet", *options)
        assert done.returncode == 0, f"run failed:\n{done.stdout}\n{done.stderr}"
        status, counts = run_summary(done.stdout)
        assert status == "succeeded"
        assert list(counts) == list(ENTITIES)
        job = self.deployment.jobs()[-1]
        assert job.status == "succeeded"
        for name, printed in counts.items():
            stored = job.progress["entities"][name]
            for field in ("read", "inserted", "updated", "unchanged", "deleted"):
                assert stored[field] == printed[field], (name, field)
            assert stored["dead_lettered"] == printed["dead letters"]
        return counts

    def legacy(self) -> dict[str, Rows]:
        return legacy_rows(self.legacy_url, self.recipe.schema)

    def targets(self, *, live: bool = True) -> dict[str, Rows]:
        return {name: target_rows(self.target_url, name, live=live) for name in ENTITIES}

    def assert_target_equals_source(self, *, cli: bool = True) -> dict[str, set[Key]]:
        """Target == source once the open dead letters are set aside; returns those.

        ``cli``: also through ``pacsync reconcile`` (a process start, about 1.5 s).
        """
        parked = self.deployment.open_letters()
        legacy, targets = self.legacy(), self.targets()
        for name in ENTITIES:
            assert not mismatches(name, legacy[name], targets[name], parked[name])
        for name, report in self.deployment.reconcile().items():
            assert report.content_match, name
            assert report.explained, name
            assert report.source_rows == len(legacy[name])
            settled = report.target_rows - report.parked_in_target
            assert settled == len(legacy[name]) - report.parked_in_source
            assert report.dead_letters == len(parked[name])
        if cli:
            done = self.pacsync("reconcile", self.deployment.pipeline)
            assert done.returncode == 0, f"reconcile:\n{done.stdout}\n{done.stderr}"
            assert "MISMATCH" not in done.stdout
            assert "parked as dead letters are set aside on both sides" in done.stdout
        return parked


def _sync(recipe: Any, pacsync: Any, legacy_url: str, target_url: str, scale: float) -> Sync:
    recipe.generate.generate(legacy_url, scale=scale, seed=42, now=NOW)
    pacsync.env.update({"LEGACY_DB_URL": legacy_url, "WAREHOUSE_URL": target_url})
    return Sync(recipe, pacsync, Deployment(recipe.pipeline, pacsync.env), legacy_url, target_url)


@pytest.fixture
def sync(databases: tuple[str, str], recipe: Any, pacsync: Any) -> Sync:
    return _sync(recipe, pacsync, *databases, scale=SCALE)


@pytest.fixture
def small_sync(recipe: Any, pacsync: Any, tmp_path: Path) -> Sync:
    """SQLite to SQLite, 248 parcels: for the corner cases."""
    return _sync(
        recipe,
        pacsync,
        f"sqlite:///{tmp_path / 'legacy.db'}",
        f"sqlite:///{tmp_path / 'warehouse.db'}",
        scale=0.02,
    )


def _use(sync: Sync, strategy: str) -> None:
    sync.pacsync.env.update(dict.fromkeys(STRATEGY_VARIABLES, strategy))


# -- the full load ----------------------------------------------------------------------------


def _full_load(sync: Sync, *, cli: bool = True) -> dict[str, set[Key]]:
    """The first run: everything loads, messy rows become dead letters; the open ones."""
    legacy = sync.legacy()
    counts = sync.run("--full")
    parked = sync.assert_target_equals_source(cli=cli)
    for name, c in counts.items():
        assert c["mode"] == "full"
        assert c["read"] == len(legacy[name])
        assert c["inserted"] == len(legacy[name]) - len(parked[name])
        assert c["dead letters"] == len(parked[name])
        assert (c["updated"], c["deleted"], c["unchanged"], c["filtered"]) == (0, 0, 0, 0)
    all_rows = sync.targets(live=False)
    assert all(r["deleted_at"] is None for rows in all_rows.values() for r in rows.values())
    _assert_messy_rows_parked(sync, legacy, parked)
    return parked


def _assert_messy_rows_parked(
    sync: Sync, legacy: dict[str, Rows], parked: dict[str, set[Key]]
) -> None:
    letters = {(d["entity"], tuple(_key(d))): d for d in sync.deployment.letters("open")}
    # a blank State fails the enum rule (NULL would take the WA default; '' does not)
    bad_state = {
        k
        for k, r in legacy["properties"].items()
        if r["State"] is not None and r["State"].strip().upper() not in VALID_STATES
    }
    assert bad_state, "the recipe's data should hold parcels with a blank State"
    assert parked["properties"] == bad_state
    for key in bad_state:
        letter = letters[("properties", key)]
        assert (letter["rule"], letter["field"], letter["error_code"]) == (
            "enum",
            "state",
            "PACS-004",
        )
        assert "WA, OR, ID" in letter["message"]
        assert letter["payload"]["PropertyID"] == key[0]  # the whole record is kept
        assert letter["payload"]["ParcelNumber"] == legacy["properties"][key]["ParcelNumber"]
    # owners of parcels purged long ago, or of parcels parked above, fail the reference rule
    synced = {k[0] for k in legacy["properties"]} - {k[0] for k in bad_state}
    orphans = {k for k, r in legacy["owners"].items() if r["PropertyID"] not in synced}
    assert {
        k
        for k, r in legacy["owners"].items()
        if r["PropertyID"] < sync.recipe.schema.PROPERTY_ID_BASE
    } <= orphans
    assert orphans <= parked["owners"]
    for key in orphans:
        letter = letters[("owners", key)]
        assert (letter["rule"], letter["field"]) == ("reference", "property_id")
        assert str(legacy["owners"][key]["PropertyID"]) in letter["message"]
    # each parked record is parked once
    open_per_key = Counter((d["entity"], d["record_key"]) for d in letters.values())
    assert set(open_per_key.values()) == {1}


def _key(letter: dict[str, Any]) -> list[Any]:
    return list(json.loads(letter["record_key"]))


def _assert_rerun_adds_nothing(sync: Sync, *options: str) -> None:
    letters = sorted((d["id"], d["status"]) for d in sync.deployment.letters())
    counts = sync.run(*options)
    for name, c in counts.items():
        assert (c["inserted"], c["deleted"]) == (0, 0), name
        if "--full" not in options:
            assert c["updated"] == 0, name
    assert sorted((d["id"], d["status"]) for d in sync.deployment.letters()) == letters


# -- the day of edits -------------------------------------------------------------------------


@dataclass
class Edits:
    """What mutate.py changed, as key sets per entity, with its own report."""

    report: dict[str, dict[str, int]]
    inserted: dict[str, set[Key]]
    updated: dict[str, set[Key]]
    deleted: dict[str, set[Key]]


def _edit(sync: Sync, **amounts: int) -> Edits:
    before = sync.legacy()
    report = sync.recipe.mutate.mutate(sync.legacy_url, seed=7, now=LATER, **amounts)
    after = sync.legacy()
    edits = Edits(report, {}, {}, {})
    for name, entity in ENTITIES.items():
        old, new = before[name], after[name]
        edits.inserted[name] = set(new) - set(old)
        edits.deleted[name] = set(old) - set(new)
        edits.updated[name] = {k for k in set(old) & set(new) if old[k] != new[k]}
        done = report[entity.source]
        assert len(edits.inserted[name]) == done["inserted"]
        assert len(edits.updated[name]) == done["updated"]
        assert len(edits.deleted[name]) == done["deleted"]
    return edits


def _expected_counts(
    edits: Edits,
    entity: str,
    synced: set[Key],
    before: set[Key],
    after: set[Key],
    *,
    deletes: bool,
) -> dict[str, int]:
    """What a run should report for ``entity``: mutate's counts less the dead-letter cases.

    ``synced``: target keys before the run; ``before``/``after``: open dead letters.
    """
    done = edits.report[ENTITIES[entity].source]
    inserted, updated, deleted = (
        edits.inserted[entity],
        edits.updated[entity],
        edits.deleted[entity],
    )
    return {
        # new rows that fail a rule are parked; parked rows fixed by an edit load now
        "inserted": done["inserted"] - len(inserted & after) + len((updated & before) - after),
        # edits of parked rows are not updates of the target
        "updated": done["updated"] - len(updated - synced) - len(updated & synced & after),
        # rows never loaded are not deleted from the target
        "deleted": done["deleted"] - len(deleted - synced) if deletes else 0,
    }


def _assert_soft_deleted(sync: Sync, gone: dict[str, set[Key]]) -> None:
    for name, rows in sync.targets(live=False).items():
        deleted = {k for k, r in rows.items() if r["deleted_at"] is not None}
        assert deleted == gone[name], name
        for key in deleted:
            assert rows[key]["_pacsync_synced_at"] >= rows[key]["deleted_at"]


# -- the scenarios ----------------------------------------------------------------------------


def test_full_then_incremental_with_hash_diff(sync: Sync) -> None:
    _use(sync, "hash_diff")
    parked = _full_load(sync)
    synced = {name: set(rows) for name, rows in sync.targets().items()}
    edits = _edit(sync)
    assert all(edits.report[e.source]["deleted"] for e in ENTITIES.values())

    counts = sync.run("--incremental")
    now_parked = sync.assert_target_equals_source()
    for name, c in counts.items():
        assert c["mode"] == "hash_diff"
        expected = _expected_counts(
            edits, name, synced[name], parked[name], now_parked[name], deletes=True
        )
        assert {k: c[k] for k in expected} == expected, name
    _assert_soft_deleted(sync, {n: edits.deleted[n] & synced[n] for n in ENTITIES})
    # a record deleted from the source no longer waits as an open dead letter
    for name in ENTITIES:
        assert not now_parked[name] & edits.deleted[name], name
    _assert_rerun_adds_nothing(sync, "--incremental")


@pytest.mark.parametrize(
    "databases",
    [
        "mariadb-to-postgresql",
        "postgresql-to-postgresql",
        "sqlite-to-sqlite",
    ],
    indirect=True,
)
def test_full_then_incremental_with_cursor(sync: Sync) -> None:
    _use(sync, "cursor")
    parked = _full_load(sync, cli=False)  # the same load as with hash_diff
    # rows in the overlap window below the cursor are read again, and left alone
    _assert_rerun_adds_nothing(sync, "--incremental")
    synced = {name: set(rows) for name, rows in sync.targets().items()}
    fingerprints = {
        name: {k: r[FINGERPRINT] for k, r in rows.items()} for name, rows in sync.targets().items()
    }
    edits = _edit(sync)

    # rows modified since the saved cursor (less the overlap) are read again; deletes
    # leave no trace in LastModified, so they wait for the periodic key check (every 7
    # runs in the recipe) or a full run
    counts = sync.run("--incremental")
    now_parked = sync.deployment.open_letters()
    legacy, targets = sync.legacy(), sync.targets()
    for name, c in counts.items():
        assert c["mode"] == "cursor"
        expected = _expected_counts(
            edits, name, synced[name], parked[name], now_parked[name], deletes=False
        )
        assert {k: c[k] for k in expected} == expected, name
        stale = edits.deleted[name] & synced[name]
        assert not mismatches(
            name,
            legacy[name],
            {k: v for k, v in targets[name].items() if k not in stale},
            now_parked[name],
        )
        assert stale <= set(targets[name])
        changed = {
            k
            for k in set(targets[name]) & synced[name]
            if targets[name][k][FINGERPRINT] != fingerprints[name][k]
        }
        assert changed == (edits.updated[name] & synced[name]) - now_parked[name], name
    reports = sync.deployment.reconcile()
    for name, report in reports.items():
        gap = len(edits.deleted[name] & synced[name])
        assert report.target_rows == report.source_rows - report.parked_in_source + gap
    done = sync.pacsync("reconcile", sync.deployment.pipeline)
    assert done.returncode == 1
    assert "MISMATCH" in done.stdout

    counts = sync.run("--full")
    sync.assert_target_equals_source()
    for name, c in counts.items():
        assert c["deleted"] == len(edits.deleted[name] & synced[name]), name
        assert c["inserted"] == 0, name
    _assert_soft_deleted(sync, {n: edits.deleted[n] & synced[n] for n in ENTITIES})


# -- corner cases -----------------------------------------------------------------------------


def test_a_full_run_over_an_unchanged_target_changes_nothing(small_sync: Sync) -> None:
    sync = small_sync
    sync.run("--full")
    synced_at = {
        name: {k: r["_pacsync_synced_at"] for k, r in rows.items()}
        for name, rows in sync.targets().items()
    }
    counts = sync.run("--full")
    for name, c in counts.items():
        assert c["unchanged"] == len(synced_at[name]), name
        assert (c["inserted"], c["updated"], c["deleted"]) == (0, 0, 0), name
    after = {
        name: {k: r["_pacsync_synced_at"] for k, r in rows.items()}
        for name, rows in sync.targets().items()
    }
    assert after == synced_at


def test_a_record_edited_into_an_invalid_state_is_explained_by_its_dead_letter(
    small_sync: Sync,
) -> None:
    sync = small_sync
    sync.run("--full")
    key = min(sync.targets()["properties"])
    db = engine(sync.legacy_url)
    try:
        with db.begin() as conn:
            conn.execute(
                sa.update(sync.recipe.schema.property)
                .where(sync.recipe.schema.property.c.PropertyID == key[0])
                .values(State="", LastModified=LATER)
            )
    finally:
        db.dispose()
    counts = sync.run("--incremental")
    assert counts["properties"]["dead letters"] >= 1
    letter = next(
        d
        for d in sync.deployment.letters("open")
        if d["entity"] == "properties" and d["record_key"] == f"[{key[0]}]"
    )
    assert (letter["rule"], letter["field"]) == ("enum", "state")
    assert sync.deployment.reconcile()["properties"].explained
    done = sync.pacsync("reconcile", sync.deployment.pipeline)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("databases", ["mariadb-to-postgresql"], indirect=True)
def test_a_full_load_split_across_processes_equals_the_source(sync: Sync) -> None:
    """owners, valuations and structures load in two processes by key range (properties,
    with a unique rule, in one); the result is the same as a single-process load."""
    _use(sync, "hash_diff")
    sync.pacsync.env["PACS_SYNC_PARALLEL"] = "2"
    _full_load(sync)
    db = engine(sync.target_url)
    try:
        with db.connect() as conn:
            names = conn.execute(sa.text("SELECT entity FROM pacsync_checkpoints")).scalars()
            assert sorted(names) == sorted(ENTITIES)  # the key ranges' checkpoints are gone
    finally:
        db.dispose()
    counts = sync.run("--incremental")
    assert all(c["inserted"] + c["updated"] + c["deleted"] == 0 for c in counts.values())
