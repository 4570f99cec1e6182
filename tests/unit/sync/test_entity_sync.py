"""EntitySync against the in-memory fakes: full loads, the incremental strategies, failures."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from pacsync.domain.mapping import mapping_version
from pacsync.errors import JobTimeout, StoreUnavailable
from pacsync.sync.entity import EntitySync

Make = Callable[..., Any]


def target_of(world: Any, numbers: Any, make_target: Make, **changes: Any) -> dict[Any, Any]:
    return {(n,): make_target(n, **changes) for n in numbers}


def data_writes(world: Any) -> list[Any]:
    """Applied writes that carried rows."""
    return [w for w in world.destination.writes if w.rows]


def written_keys(world: Any, since: int = 0) -> set[Any]:
    return {(row[0],) for w in world.destination.writes[since:] for row in w.rows}


# --- full --------------------------------------------------------------------------------------


def test_full_into_an_empty_target_inserts_every_row(parcels: Make, parcel_target: Make) -> None:
    world = parcels(25)

    counts = world.sync("parcel", "full")

    assert world.destination.live("parcel") == target_of(world, range(1, 26), parcel_target)
    assert (counts.read, counts.inserted, counts.updated, counts.deleted) == (25, 25, 0, 0)
    assert counts.batches == 4  # three data batches and the closing checkpoint
    writes = data_writes(world)
    assert [len(w.rows) for w in writes] == [10, 10, 5]
    assert all(w.insert_only for w in writes)
    checkpoint = world.destination.checkpoints["parcel"]
    assert (checkpoint.phase, checkpoint.after_key, checkpoint.fresh) == ("idle", None, False)
    assert checkpoint.completed_runs == 1
    assert checkpoint.mapping_version == mapping_version(world.entity("parcel"))
    kinds = world.progress.kinds()
    assert kinds == ["entity_started", *["batch_done"] * 4, "entity_done"]
    assert world.progress.events[0].mode == "full"
    assert world.progress.events[0].total == 25
    assert world.progress.events[-1].counts["inserted"] == 25


def test_first_incremental_run_is_a_full_load(parcels: Make, parcel_target: Make) -> None:
    world = parcels(12)
    counts = world.sync("parcel")
    assert counts.inserted == 12
    assert world.progress.events[0].mode == "full"
    assert world.destination.live("parcel") == target_of(world, range(1, 13), parcel_target)


def test_full_into_a_populated_target_only_touches_what_changed(
    parcels: Make, parcel_target: Make
) -> None:
    world = parcels(25)
    world.sync("parcel", "full")
    world.source.upsert("Parcel", {**world.source.tables["Parcel"][2], "Value": "1.00"})
    world.source.delete("Parcel", (25,))
    # The destination reads fingerprints, so a plain full (no mapping change) ...
    world.destination.checkpoints.pop("parcel")
    before = len(world.destination.writes)

    counts = world.sync("parcel", "full")

    assert (counts.updated, counts.unchanged, counts.deleted, counts.inserted) == (1, 23, 1, 0)
    assert written_keys(world, before) == {(3,)}
    assert not any(w.insert_only for w in world.destination.writes[before:])
    assert world.destination.live("parcel")[(3,)]["value"] == Decimal("1.00")
    assert (25,) not in world.destination.live("parcel")


# --- hash_diff ---------------------------------------------------------------------------------


@pytest.mark.parametrize("merge", [True, False], ids=["key-order-merge", "fingerprint-map"])
def test_hash_diff_finds_inserts_updates_and_deletes(
    parcels: Make,
    parcel_record: Make,
    parcel_target: Make,
    merge: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both ways of diffing: merging key-ordered streams (integer keys) and a fingerprint
    map of the target (keys whose order may differ between databases)."""
    monkeypatch.setattr(EntitySync, "_ordered_keys", lambda self: merge)
    world = parcels(25)
    world.sync("parcel", "full")
    first_run = dict(world.destination.live("parcel"))
    world.source.upsert("Parcel", parcel_record(26))
    world.source.upsert("Parcel", parcel_record(3, Address="3 Oak Ave"))
    world.source.delete("Parcel", (5,))
    before = len(world.destination.writes)

    counts = world.sync("parcel")

    assert world.progress.events[-2].kind == "batch_done"
    assert [e.mode for e in world.progress.events if e.kind == "entity_started"] == [
        "full",
        "hash_diff",
    ]
    assert (counts.read, counts.inserted, counts.updated, counts.deleted, counts.unchanged) == (
        25,
        1,
        1,
        1,
        23,
    )
    assert written_keys(world, before) == {(3,), (26,)}
    live = world.destination.live("parcel")
    assert live[(3,)] == parcel_target(3, address="3 Oak Ave")
    assert live[(26,)] == parcel_target(26)
    assert (5,) not in live
    unchanged = set(range(1, 26)) - {3, 5}
    assert all(live[(n,)] is first_run[(n,)] for n in unchanged)
    assert world.destination.checkpoints["parcel"].completed_runs == 2


def test_hash_diff_rerun_without_changes_writes_no_rows(parcels: Make) -> None:
    world = parcels(25)
    world.sync("parcel")
    before = len(world.destination.writes)

    counts = world.sync("parcel")

    assert (counts.read, counts.unchanged, counts.inserted, counts.updated) == (25, 25, 0, 0)
    new = world.destination.writes[before:]
    assert len(new) == 1
    assert (new[0].rows, new[0].deletes) == ([], [])


def test_deletes_ignore_keeps_rows_gone_from_the_source(parcels: Make) -> None:
    world = parcels(12, deletes="ignore")
    world.sync("parcel")
    world.source.delete("Parcel", (4,))
    counts = world.sync("parcel")
    assert counts.deleted == 0
    assert (4,) in world.destination.live("parcel")


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_soft_and_hard_delete(parcels: Make, parcel_target: Make, mode: str) -> None:
    world = parcels(12, delete_mode=mode)
    world.sync("parcel")
    world.source.delete("Parcel", (4,))

    counts = world.sync("parcel")

    assert counts.deleted == 1
    destination = world.destination
    assert (4,) not in destination.live("parcel")
    assert (4,) not in destination.fingerprints("parcel")
    assert destination.lookup("parcel", [(4,), (5,)]).keys() == {(5,)}
    assert destination.existing("parcel", [(4,), (5,)]) == {(5,)}
    assert len(destination.fingerprints("parcel")) == 11
    if mode == "soft":
        kept = destination.tables["parcel"][(4,)]
        assert kept["deleted_at"] is not None
        assert {k: v for k, v in kept.items() if k != "deleted_at"} == parcel_target(4)
    else:
        assert (4,) not in destination.tables["parcel"]


def test_soft_deleted_row_comes_back_when_the_source_row_does(
    parcels: Make, parcel_record: Make, parcel_target: Make
) -> None:
    world = parcels(12)
    world.sync("parcel")
    world.source.delete("Parcel", (4,))
    world.sync("parcel")
    world.source.upsert("Parcel", parcel_record(4))

    counts = world.sync("parcel")

    assert (counts.inserted, counts.deleted) == (1, 0)
    assert world.destination.tables["parcel"][(4,)] == parcel_target(4)


def test_summary_matches_between_identical_targets(parcels: Make) -> None:
    one, two = parcels(15), parcels(15)
    one.sync("parcel")
    two.sync("parcel", "full")
    assert one.destination.fingerprints("parcel") == two.destination.fingerprints("parcel")
    two.source.upsert("Parcel", {**two.source.tables["Parcel"][0], "Value": "2"})
    two.sync("parcel")
    assert one.destination.fingerprints("parcel") != two.destination.fingerprints("parcel")


# --- cursor ------------------------------------------------------------------------------------


def test_cursor_rereads_the_overlap_window(
    parcels: Make, parcel_record: Make, parcel_target: Make
) -> None:
    world = parcels(25, strategy="cursor", cursor={"column": "Modified", "overlap": 2})
    world.sync("parcel")
    assert world.destination.checkpoints["parcel"].cursor == 25
    # Committed late with an older cursor value, inside the overlap window (>= 23) ...
    world.source.upsert("Parcel", parcel_record(7, Address="7 Late Ln", Modified=24))
    # ... below the window: never seen by a cursor strategy.
    world.source.upsert("Parcel", parcel_record(8, Address="8 Lost Ln", Modified=22))
    world.source.upsert("Parcel", parcel_record(3, Address="3 New Rd", Modified=30))

    counts = world.sync("parcel")

    assert world.progress.events[-1].kind == "entity_done"
    assert [e.mode for e in world.progress.events if e.kind == "entity_started"][-1] == "cursor"
    # rows 23, 24, 25 and 7 (cursor 24) and 3 (cursor 30)
    assert (counts.read, counts.updated, counts.unchanged) == (5, 2, 3)
    live = world.destination.live("parcel")
    assert live[(7,)]["address"] == "7 Late Ln"
    assert live[(3,)]["address"] == "3 New Rd"
    assert live[(8,)] == parcel_target(8)
    assert world.destination.checkpoints["parcel"].cursor == 30


def test_cursor_without_overlap_misses_late_rows(parcels: Make, parcel_record: Make) -> None:
    world = parcels(25, strategy="cursor", cursor={"column": "Modified"})
    world.sync("parcel")
    world.source.upsert("Parcel", parcel_record(7, Address="7 Late Ln", Modified=24))
    counts = world.sync("parcel")
    assert counts.read == 1  # only the row at the saved cursor itself
    assert world.destination.live("parcel")[(7,)]["address"] == "7 Main St"


def test_cursor_stops_below_the_source_bound(parcels: Make, parcel_record: Make) -> None:
    world = parcels(25, strategy="cursor", cursor={"column": "Modified"})
    world.source.bound = 20
    world.sync("parcel")
    assert world.destination.checkpoints["parcel"].cursor == 20
    world.source.upsert("Parcel", parcel_record(26, Modified=26))
    world.source.upsert("Parcel", parcel_record(27, Modified=29))  # still in flight
    world.source.bound = 28

    counts = world.sync("parcel")

    assert (counts.read, counts.inserted, counts.unchanged) == (7, 1, 6)  # 20..26
    assert (26,) in world.destination.live("parcel")
    assert (27,) not in world.destination.live("parcel")
    assert world.destination.checkpoints["parcel"].cursor == 28

    world.source.bound = None
    counts = world.sync("parcel")
    assert (counts.read, counts.inserted) == (1, 1)
    assert (27,) in world.destination.live("parcel")
    assert world.destination.checkpoints["parcel"].cursor == 29


def test_cursor_finds_deletes_every_nth_run(parcels: Make) -> None:
    world = parcels(12, strategy="cursor", cursor={"column": "Modified", "key_check_every": 3})
    world.sync("parcel")  # run 1
    world.source.delete("Parcel", (4,))

    second = world.sync("parcel")  # run 2: no key check
    assert second.deleted == 0
    assert (4,) in world.destination.live("parcel")

    third = world.sync("parcel")  # run 3: key check
    assert third.deleted == 1
    assert (4,) not in world.destination.live("parcel")
    assert world.destination.checkpoints["parcel"].completed_runs == 3


def test_cursor_never_checks_keys_by_default(parcels: Make) -> None:
    world = parcels(12, strategy="cursor", cursor={"column": "Modified"})
    world.sync("parcel")
    world.source.delete("Parcel", (4,))
    for _ in range(3):
        assert world.sync("parcel").deleted == 0
    assert (4,) in world.destination.live("parcel")


# --- change tracking ---------------------------------------------------------------------------


def change_tracked(parcels: Make, rows: int = 25) -> Any:
    world = parcels(rows, strategy="change_tracking")
    world.source.current_version = 100
    world.source.min_valid_version = 50
    world.sync("parcel")
    return world


def test_change_tracking_applies_the_changes_since_the_saved_version(
    parcels: Make, parcel_record: Make, parcel_target: Make
) -> None:
    world = change_tracked(parcels)
    assert world.destination.checkpoints["parcel"].change_version == 100
    world.source.upsert("Parcel", parcel_record(26))
    world.source.upsert("Parcel", parcel_record(2, Status="sold"))
    world.source.upsert("Parcel", parcel_record(2, Status="sold", Value="5.00"))
    world.source.delete("Parcel", (7,))
    world.source.upsert("Parcel", parcel_record(27))
    world.source.delete("Parcel", (27,))

    counts = world.sync("parcel")

    assert world.progress.events[-1].kind == "entity_done"
    assert [e.mode for e in world.progress.events if e.kind == "entity_started"][-1] == (
        "change_tracking"
    )
    assert (counts.read, counts.inserted, counts.updated) == (2, 1, 1)
    live = world.destination.live("parcel")
    assert live[(2,)] == parcel_target(2, status="sold", value=Decimal("5.00"))
    assert live[(26,)] == parcel_target(26)
    assert (7,) not in live
    assert (27,) not in world.destination.tables["parcel"]
    assert len(live) == 25
    assert world.destination.checkpoints["parcel"].change_version == 106


def test_change_tracking_older_than_min_valid_forces_a_full_run(
    parcels: Make, parcel_record: Make, parcel_target: Make
) -> None:
    world = change_tracked(parcels)
    # Changes the source no longer reports: the tracking window moved past version 100.
    rows = world.source.tables["Parcel"]
    rows[1] = parcel_record(2, Status="sold")
    del rows[8]  # parcel 9
    world.source.change_log.clear()
    world.source.current_version = 160
    world.source.min_valid_version = 150

    counts = world.sync("parcel")

    assert [e.mode for e in world.progress.events if e.kind == "entity_started"][-1] == "full"
    assert (counts.read, counts.updated, counts.deleted, counts.unchanged) == (24, 1, 1, 23)
    live = world.destination.live("parcel")
    assert live[(2,)] == parcel_target(2, status="sold")
    assert (9,) not in live
    checkpoint = world.destination.checkpoints["parcel"]
    assert (checkpoint.change_version, checkpoint.phase) == (160, "idle")


def test_change_tracking_without_changes_reads_nothing(parcels: Make) -> None:
    world = change_tracked(parcels)
    counts = world.sync("parcel")
    assert (counts.read, counts.deleted) == (0, 0)
    assert world.destination.checkpoints["parcel"].completed_runs == 2


def test_change_tracking_counts_only_deletes_of_synced_rows(
    parcels: Make, parcel_record: Make
) -> None:
    world = change_tracked(parcels)
    world.source.delete("Parcel", (7,))
    world.source.upsert("Parcel", parcel_record(27))
    world.source.delete("Parcel", (27,))

    counts = world.sync("parcel")

    assert (7,) not in world.destination.live("parcel")
    assert counts.deleted == 1


# --- mapping change ----------------------------------------------------------------------------


def test_mapping_change_forces_a_full_rewrite(
    parcels: Make, make_pipeline: Make, parcel_entity: Make, parcel_target: Make
) -> None:
    world = parcels(25)
    world.sync("parcel")
    old_version = world.destination.checkpoints["parcel"].mapping_version
    entity = parcel_entity()
    entity["fields"]["address"]["transforms"] = ["trim", "upper"]
    world.respec(make_pipeline({"parcel": entity}))
    before = len(world.destination.writes)

    counts = world.sync("parcel")

    assert [e.mode for e in world.progress.events if e.kind == "entity_started"][-1] == "full"
    assert (counts.updated, counts.unchanged, counts.inserted) == (25, 0, 0)
    assert written_keys(world, before) == {(n,) for n in range(1, 26)}
    assert not any(w.insert_only for w in world.destination.writes[before:])
    assert world.destination.live("parcel") == {
        (n,): parcel_target(n, address=f"{n} MAIN ST") for n in range(1, 26)
    }
    checkpoint = world.destination.checkpoints["parcel"]
    assert checkpoint.mapping_version != old_version
    assert checkpoint.mapping_version == mapping_version(world.entity("parcel"))
    assert checkpoint.extra == {}

    again = world.sync("parcel")
    assert (again.updated, again.unchanged) == (0, 25)


# --- dead letters ------------------------------------------------------------------------------


def test_invalid_rows_go_to_dead_letters_whole_and_the_run_goes_on(
    parcels: Make, parcel_record: Make
) -> None:
    world = parcels(
        25,
        validate=[
            {"field": "value", "rule": "range", "min": 0},
            {"field": "address", "rule": "required"},
        ],
    )
    rows = world.source.tables["Parcel"]
    rows[3] = parcel_record(4, Value="-5")
    rows[7] = parcel_record(8, Value="lots")
    rows[21] = parcel_record(22, Address="   ")

    counts = world.sync("parcel", job_id="job-1")

    assert (counts.read, counts.inserted, counts.dead_lettered) == (25, 22, 3)
    assert counts.rules_failed == {"range": 1, "type": 1, "required": 1}
    assert counts.batches == 4
    live = world.destination.live("parcel")
    assert set(live) == {(n,) for n in range(1, 26)} - {(4,), (8,), (22,)}
    letters = {item.key: item for item in world.dead_letters.items}
    assert set(letters) == {(4,), (8,), (22,)}
    bad_value = letters[(8,)]
    assert (bad_value.field, bad_value.rule) == ("value", "type")
    assert bad_value.record == {
        "ParcelID": 8,
        "Address": " 8 Main St ",
        "Value": "lots",
        "Status": "active",
    }
    assert (bad_value.job_id, bad_value.pipeline, bad_value.entity) == ("job-1", "county", "parcel")
    assert (letters[(4,)].rule, letters[(22,)].rule) == ("range", "required")
    assert letters[(4,)].message == "-5.00 is below 0"
    assert world.progress.events[-1].counts["dead_lettered"] == 3


def test_dead_letters_are_not_duplicated_on_rerun(parcels: Make, parcel_record: Make) -> None:
    world = parcels(12, validate=[{"field": "value", "rule": "range", "min": 0}])
    world.source.tables["Parcel"][3] = parcel_record(4, Value="-5")
    world.sync("parcel")
    assert len(world.dead_letters.items) == 1

    rerun = world.sync("parcel")

    assert rerun.dead_lettered == 1  # rejected again ...
    assert len(world.dead_letters.items) == 1  # ... but parked once

    world.source.upsert("Parcel", parcel_record(4, Value="-6"))
    world.sync("parcel")
    letters = world.dead_letters.items
    assert [(i.record["Value"], i.status) for i in letters] == [
        ("-5", "superseded"),
        ("-6", "open"),
    ]
    assert world.dead_letters.open_keys("county", "parcel") == {(4,)}

    world.source.upsert("Parcel", parcel_record(4, Value="6"))
    fixed = world.sync("parcel")

    assert (fixed.inserted, fixed.dead_lettered) == (1, 0)
    assert world.destination.live("parcel")[(4,)]["value"] == Decimal("6.00")
    assert [i.status for i in letters] == ["superseded", "resolved"]
    assert letters[1].reason == "synced or deleted"
    assert world.dead_letters.open_keys("county", "parcel") == set()


def test_dead_letter_of_a_record_deleted_from_the_source_is_resolved(
    parcels: Make, parcel_record: Make
) -> None:
    world = parcels(12, validate=[{"field": "value", "rule": "range", "min": 0}])
    world.source.tables["Parcel"][3] = parcel_record(4, Value="-5")
    world.source.tables["Parcel"][4] = parcel_record(5, Value="-5")
    world.sync("parcel")
    world.source.delete("Parcel", (4,))

    counts = world.sync("parcel")

    assert counts.dead_lettered == 1  # 5 is still bad
    status = {i.key: (i.status, i.reason) for i in world.dead_letters.items}
    assert status == {(4,): ("resolved", "deleted"), (5,): ("open", None)}


def test_dead_letter_with_a_date_key_stays_open_while_the_record_is_broken(
    make_pipeline: Make, make_world: Make
) -> None:
    valuation = {
        "source": {"table": "PropertyValue", "key": ["ParcelID", "AsOf"]},
        "target": {"table": "valuation"},
        "fields": {
            "parcel_id": {"from": "ParcelID", "type": "integer"},
            "as_of": {"from": "AsOf", "type": "date"},
            "value": {"from": "Value", "type": "decimal"},
        },
        "validate": [{"field": "value", "rule": "range", "min": 0}],
    }
    world = make_world(
        make_pipeline({"valuation": valuation}),
        {
            "PropertyValue": [
                {"ParcelID": 1, "AsOf": dt.date(2024, 1, 1), "Value": "-1"},
                {"ParcelID": 1, "AsOf": dt.date(2025, 1, 1), "Value": "10"},
            ]
        },
    )
    world.sync("valuation")
    assert world.dead_letters.open_keys("county", "valuation") == {(1, "2024-01-01")}

    world.sync("valuation")  # nothing changed: the record is still broken

    assert [(i.status, i.reason) for i in world.dead_letters.items] == [("open", None)]


def owners_and_parcels(make_pipeline: Make, make_world: Make) -> Any:
    owner = {
        "source": {"table": "PropertyOwner", "key": ["OwnerID"]},
        "target": {"table": "owner"},
        "fields": {
            "owner_id": {"from": "OwnerID", "type": "integer"},
            "name": {"from": "Name"},
            "email": {"from": "Email", "transforms": ["trim", "lower"]},
        },
        "validate": [{"field": "email", "rule": "unique"}],
    }
    parcel = {
        "source": {"table": "Parcel", "key": ["ParcelID"]},
        "target": {"table": "parcel"},
        "fields": {
            "parcel_id": {"from": "ParcelID", "type": "integer"},
            "owner_id": {"from": "OwnerID", "type": "integer"},
        },
        "validate": [{"field": "owner_id", "rule": "reference", "entity": "owner"}],
    }
    # Declared child first: ordered_entities must still run owner first.
    spec = make_pipeline({"parcel": parcel, "owner": owner})
    return make_world(
        spec,
        {
            "PropertyOwner": [
                {"OwnerID": 1, "Name": "Ann", "Email": "ann@example.org"},
                {"OwnerID": 2, "Name": "Bo", "Email": "bo@example.org"},
                {"OwnerID": 3, "Name": "Cy", "Email": " ANN@example.org "},
                {"OwnerID": 4, "Name": "Di", "Email": None},
                {"OwnerID": 5, "Name": "Ed", "Email": None},
            ],
            "Parcel": [
                {"ParcelID": 10, "OwnerID": 1},
                {"ParcelID": 11, "OwnerID": 3},
                {"ParcelID": 12, "OwnerID": None},
                {"ParcelID": 13, "OwnerID": 99},
                {"ParcelID": 14, "OwnerID": 2},
            ],
        },
    )


def test_unique_and_reference_rules(make_pipeline: Make, make_world: Make) -> None:
    world = owners_and_parcels(make_pipeline, make_world)
    assert world.spec.ordered_entities() == ["owner", "parcel"]

    owners = world.sync("owner")
    parcels = world.sync("parcel")

    assert (owners.inserted, owners.dead_lettered, owners.rules_failed) == (4, 1, {"unique": 1})
    assert set(world.destination.live("owner")) == {(1,), (2,), (4,), (5,)}
    assert (parcels.inserted, parcels.dead_lettered) == (3, 2)
    assert parcels.rules_failed == {"reference": 2}
    assert set(world.destination.live("parcel")) == {(10,), (12,), (14,)}
    letters = {(i.entity, i.key): i for i in world.dead_letters.items}
    assert set(letters) == {("owner", (3,)), ("parcel", (11,)), ("parcel", (13,))}
    duplicate = letters[("owner", (3,))]
    assert (duplicate.field, duplicate.rule) == ("email", "unique")
    assert duplicate.record == {"owner_id": 3, "name": "Cy", "email": "ann@example.org"}
    assert letters[("parcel", (13,))].message == "no owner with key 99"
    assert world.destination.orphans("parcel", "owner_id", "owner") == 0
    assert world.source.orphans("parcel", "OwnerID", "owner") == 1


def test_unique_checks_against_the_target_and_allows_a_row_its_own_value(
    make_pipeline: Make, make_world: Make
) -> None:
    world = owners_and_parcels(make_pipeline, make_world)
    world.sync("owner")
    world.source.upsert(
        "PropertyOwner", {"OwnerID": 1, "Name": "Ann Lee", "Email": "ann@example.org"}
    )
    world.source.upsert("PropertyOwner", {"OwnerID": 6, "Name": "Fay", "Email": "BO@example.org"})

    counts = world.sync("owner")

    assert (counts.updated, counts.inserted, counts.dead_lettered) == (1, 0, 2)  # 3 again, 6
    live = world.destination.live("owner")
    assert live[(1,)]["name"] == "Ann Lee"
    assert (6,) not in live
    rejected = {i.key: i.rule for i in world.dead_letters.items}
    assert rejected == {(3,): "unique", (6,): "unique"}


def test_reference_to_a_deleted_parent_is_rejected(make_pipeline: Make, make_world: Make) -> None:
    world = owners_and_parcels(make_pipeline, make_world)
    world.sync("owner")
    world.source.delete("PropertyOwner", (2,))
    world.sync("owner")
    counts = world.sync("parcel")
    assert (14,) not in world.destination.live("parcel")
    assert counts.rules_failed == {"reference": 3}


# --- filter ------------------------------------------------------------------------------------


def test_filter_excludes_rows_and_deletes_rows_that_become_filtered(
    parcels: Make, parcel_record: Make, parcel_target: Make
) -> None:
    world = parcels(25, filter="status != 'retired' and Modified < 100")
    world.source.tables["Parcel"][5] = parcel_record(6, Status="retired")
    world.source.tables["Parcel"][6] = parcel_record(7, Modified=100)

    first = world.sync("parcel")

    assert (first.read, first.inserted, first.filtered) == (25, 23, 2)
    assert set(world.destination.live("parcel")) == {(n,) for n in range(1, 26)} - {(6,), (7,)}

    world.source.upsert("Parcel", parcel_record(2, Status="retired"))
    second = world.sync("parcel")

    # 2 became filtered; 6 and 7, never in the target, are read and filtered again.
    assert (second.deleted, second.filtered, second.inserted, second.updated) == (1, 3, 0, 0)
    assert (2,) not in world.destination.live("parcel")
    assert world.destination.tables["parcel"][(2,)]["deleted_at"] is not None
    assert (6,) not in world.destination.tables["parcel"]
    assert world.dead_letters.items == []
    assert world.destination.live("parcel")[(1,)] == parcel_target(1)


def test_a_row_whose_filter_fails_goes_to_dead_letters(parcels: Make, parcel_record: Make) -> None:
    world = parcels(12, filter="100 / Modified > 1")
    world.source.tables["Parcel"][3] = parcel_record(4, Modified=0)

    counts = world.sync("parcel")

    assert (counts.inserted, counts.dead_lettered) == (11, 1)
    assert [item.key for item in world.dead_letters.items] == [(4,)]


# --- failures and resume -----------------------------------------------------------------------


def test_failed_write_propagates_and_the_rerun_resumes_after_the_last_commit(
    parcels: Make, parcel_target: Make
) -> None:
    world = parcels(25)
    world.destination.fail_writes = [None, StoreUnavailable("store went away")]

    with pytest.raises(StoreUnavailable):
        world.sync("parcel")

    checkpoint = world.destination.checkpoints["parcel"]
    assert (checkpoint.phase, checkpoint.after_key, checkpoint.fresh) == ("full", (10,), True)
    assert set(world.destination.live("parcel")) == {(n,) for n in range(1, 11)}
    assert world.destination.write_calls == 2
    assert len(world.destination.writes) == 1

    counts = world.sync("parcel")

    assert [e.mode for e in world.progress.events if e.kind == "entity_started"] == [
        "full",
        "full",
    ]
    assert (counts.read, counts.inserted) == (15, 15)
    assert all(w.insert_only for w in data_writes(world))
    assert world.destination.live("parcel") == target_of(world, range(1, 26), parcel_target)
    final = world.destination.checkpoints["parcel"]
    assert (final.phase, final.after_key, final.completed_runs) == ("idle", None, 1)


def test_transient_failures_then_success(parcels: Make, parcel_target: Make) -> None:
    world = parcels(25)
    world.destination.fail_writes = [StoreUnavailable("down"), StoreUnavailable("down")]
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            world.sync("parcel")
        assert "parcel" not in world.destination.checkpoints
    world.sync("parcel")
    assert world.destination.live("parcel") == target_of(world, range(1, 26), parcel_target)


def test_failed_rewrite_resumes_and_still_deletes(
    parcels: Make, make_pipeline: Make, parcel_entity: Make, parcel_target: Make
) -> None:
    world = parcels(25)
    world.sync("parcel")
    world.source.delete("Parcel", (24,))
    entity = parcel_entity()
    entity["fields"]["address"]["transforms"] = ["trim", "lower"]
    world.respec(make_pipeline({"parcel": entity}))
    world.destination.fail_writes = [None, None, RuntimeError("disk full")]

    with pytest.raises(RuntimeError, match="disk full"):
        world.sync("parcel")

    checkpoint = world.destination.checkpoints["parcel"]
    assert (checkpoint.phase, checkpoint.after_key, checkpoint.fresh) == ("full", (20,), False)
    assert checkpoint.extra == {"rewrite": True}

    counts = world.sync("parcel")

    assert (counts.read, counts.updated, counts.deleted) == (4, 4, 1)
    expected = {(n,): parcel_target(n, address=f"{n} main st") for n in range(1, 26) if n != 24}
    assert world.destination.live("parcel") == expected


def test_failed_incremental_write_changes_nothing_and_the_rerun_applies_it(
    parcels: Make, parcel_record: Make, parcel_target: Make
) -> None:
    world = parcels(25)
    world.sync("parcel")
    saved = world.destination.checkpoints["parcel"]
    world.source.upsert("Parcel", parcel_record(3, Address="3 Oak Ave"))
    world.source.delete("Parcel", (5,))
    world.destination.fail_writes = [StoreUnavailable("down")]

    with pytest.raises(StoreUnavailable):
        world.sync("parcel")

    assert world.destination.checkpoints["parcel"] == saved
    assert world.destination.live("parcel")[(3,)] == parcel_target(3)
    counts = world.sync("parcel")
    assert (counts.updated, counts.deleted) == (1, 1)
    assert world.destination.live("parcel")[(3,)] == parcel_target(3, address="3 Oak Ave")


def test_job_timeout_stops_after_a_committed_batch_and_the_rerun_finishes(
    parcels: Make, parcel_target: Make
) -> None:
    world = parcels(25)

    with pytest.raises(JobTimeout) as caught:
        world.sync("parcel", deadline=time.monotonic() - 1)

    assert caught.value.transient
    assert "after 1 committed batches" in caught.value.message
    assert world.destination.checkpoints["parcel"].after_key == (10,)
    assert len(world.destination.live("parcel")) == 10

    world.sync("parcel", deadline=time.monotonic() + 60)
    assert world.destination.live("parcel") == target_of(world, range(1, 26), parcel_target)


def test_should_stop_interrupts_after_a_committed_batch(parcels: Make) -> None:
    world = parcels(25)
    with pytest.raises(KeyboardInterrupt):
        world.sync("parcel", should_stop=lambda: True)
    assert world.destination.checkpoints["parcel"].after_key == (10,)


def test_a_run_that_committed_everything_does_not_time_out(parcels: Make) -> None:
    world = parcels(12)
    world.sync("parcel")

    counts = world.sync("parcel", deadline=time.monotonic() - 1)  # nothing left to do

    assert counts.unchanged == 12
    assert world.destination.checkpoints["parcel"].completed_runs == 2


def test_a_flagged_dead_letter_is_read_again_even_when_the_cursor_has_passed_it(
    parcels: Make, parcel_record: Make
) -> None:
    world = parcels(
        12,
        strategy="cursor",
        cursor={"column": "Modified", "overlap": 0},
        validate=[{"field": "value", "rule": "range", "min": 0}],
    )
    rows = world.source.tables["Parcel"]
    rows[3], rows[7] = parcel_record(4, Value="-5"), parcel_record(8, Value="-8")
    world.sync("parcel")
    assert world.dead_letters.open_keys("county", "parcel") == {(4,), (8,)}
    # fixed in the legacy system without touching its timestamp: the cursor never sees it
    world.source.upsert("Parcel", parcel_record(4, Value="4"))
    assert world.sync("parcel").inserted == 0

    for letter in world.dead_letters.items:
        letter.status = "retry"  # `pacsync dead-letters retry` on both
    counts = world.sync("parcel")

    assert counts.inserted == 1
    assert world.destination.live("parcel")[(4,)]["value"] == Decimal("4.00")
    statuses = {letter.key: letter.status for letter in world.dead_letters.items}
    assert statuses == {(4,): "resolved", (8,): "open"}  # 8 failed again: open once more
    assert world.dead_letters.retry_keys("county", "parcel") == set()
