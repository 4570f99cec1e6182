"""A fresh full load through a BulkLoad: ranges, checkpoints, resumption, and when not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pacsync.connectors.memory import MemoryBulkLoad
from pacsync.domain.records import Row
from pacsync.errors import StoreUnavailable
from pacsync.sync import bulk_full

Make = Callable[..., Any]


@pytest.fixture(autouse=True)
def one_batch_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key ranges of one batch, so 25 parcels take three."""
    monkeypatch.setattr(bulk_full, "RANGE_BATCHES", 1)


BLANK = {4, 9, 16}  # parcels whose address is blank: the required rule parks them


def _world(parcels: Make) -> Any:
    world = parcels(25, validate=[{"field": "address", "rule": "required"}])
    for record in world.source.tables["Parcel"]:
        if record["ParcelID"] in BLANK:
            record["Address"] = "   "
    return world


def _across(row: Row) -> bool:
    """What the fake source computes itself: even parcels with an address."""
    return bool(row[0] % 2 == 0 and row[1].strip())


def _bulk(world: Any, **options: Any) -> MemoryBulkLoad:
    return MemoryBulkLoad(world.source, world.destination, _across, **options)


def _parked(world: Any) -> set[Any]:
    return {(d.entity, d.key, d.rule) for d in world.dead_letters.open()}


def test_a_fresh_full_load_copies_what_it_can_and_maps_the_rest(parcels: Make) -> None:
    pushed, rowwise = _world(parcels), _world(parcels)
    bulk = _bulk(pushed)

    counts = pushed.sync("parcel", "full", bulk=bulk)
    expected = rowwise.sync("parcel", "full")

    assert bulk.loads == 3  # 10, 10 and the last 5
    assert pushed.destination.live("parcel") == rowwise.destination.live("parcel")
    assert _parked(pushed) == _parked(rowwise) == {("parcel", (n,), "required") for n in BLANK}
    for field in ("read", "inserted", "dead_lettered", "batches"):
        assert getattr(counts, field) == getattr(expected, field), field
    assert (counts.read, counts.inserted) == (25, 22)
    checkpoint = pushed.destination.checkpoints["parcel"]
    assert (checkpoint.phase, checkpoint.after_key, checkpoint.fresh) == ("idle", None, False)
    fingerprints = pushed.destination.fingerprints("parcel")
    assert fingerprints == rowwise.destination.fingerprints("parcel")


def test_a_failed_range_keeps_the_committed_ones_and_the_next_run_resumes(parcels: Make) -> None:
    world, reference = _world(parcels), _world(parcels)
    world.destination.fail_writes = [None, StoreUnavailable("the target went away")]
    bulk = _bulk(world)

    with pytest.raises(StoreUnavailable):
        world.sync("parcel", "full", bulk=bulk)
    assert set(world.destination.live("parcel")) == {(n,) for n in range(1, 11)} - {(4,), (9,)}
    assert world.destination.checkpoints["parcel"].after_key == (10,)

    resumed = _bulk(world)
    world.sync("parcel", "full", bulk=resumed)
    reference.sync("parcel", "full")
    assert resumed.loads == 2  # from parcel 11
    assert world.destination.live("parcel") == reference.destination.live("parcel")
    assert _parked(world) == _parked(reference)


def test_a_refused_entity_or_a_filled_target_takes_the_row_path(parcels: Make) -> None:
    refused = _world(parcels)
    bulk = _bulk(refused, refused={"parcel": "the entity has a filter"})
    refused.sync("parcel", "full", bulk=bulk)
    assert bulk.loads == 0
    assert len(refused.destination.live("parcel")) == 22

    filled = _world(parcels)
    filled.sync("parcel", "full", bulk=_bulk(filled))
    again = _bulk(filled)
    counts = filled.sync("parcel", "full", bulk=again)
    assert again.loads == 0  # not fresh: rows are compared with what is there
    assert (counts.unchanged, counts.inserted) == (22, 0)


def test_a_fresh_load_settles_the_open_letters_of_records_now_valid(parcels: Make) -> None:
    world = _world(parcels)
    world.sync("parcel", "full")  # parks 4, 9 and 16
    for record in world.source.tables["Parcel"]:
        if record["ParcelID"] in {4, 9}:
            record["Address"] = "mended"
    world.destination.tables["parcel"].clear()  # emptied by hand; the letters are still open
    world.destination.checkpoints.clear()
    bulk = _bulk(world)

    world.sync("parcel", "full", bulk=bulk)

    assert bulk.loads == 3
    assert len(world.destination.live("parcel")) == 24
    # 4 went across, 9 by the row path: both settled; 16 failed again
    assert _parked(world) == {("parcel", (16,), "required")}


def test_a_range_holds_twenty_batches_up_to_a_hundred_thousand_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert bulk_full.range_rows(10) == 10  # RANGE_BATCHES is 1 in this module
    monkeypatch.setattr(bulk_full, "RANGE_BATCHES", 20)
    assert [bulk_full.range_rows(n) for n in (10, 5_000, 20_000)] == [200, 100_000, 100_000]
    assert bulk_full.range_rows(100_000) == 100_000
