"""Fresh full loads split by key range: every key exactly once, each range resumable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pacsync.sync.partition import InProcessRunner, plan

Make = Callable[..., Any]


@pytest.mark.parametrize(("low", "high", "parts"), [(1, 10, 3), (1, 1000, 4), (5, 6, 4), (7, 7, 2)])
def test_plan_covers_every_key_once(low: int, high: int, parts: int) -> None:
    ranges = plan("e", low, high, parts)
    covered = []
    for part in ranges:
        first = low if part.low is None else part.low + 1
        last = high if part.high is None else part.high
        covered.extend(range(first, last + 1))
    assert sorted(covered) == list(range(low, high + 1))
    assert len({p.checkpoint_name for p in ranges}) == len(ranges) <= parts


def test_a_parallel_full_load_fills_the_target_and_forgets_range_checkpoints(
    parcels: Make, parcel_target: Make
) -> None:
    world = parcels(45, parallel=3)
    runner = InProcessRunner(world.source, world.destination, world.dead_letters)

    counts = world.sync("parcel", "full", runner=runner)

    assert (counts.read, counts.inserted) == (45, 45)
    assert world.destination.live("parcel") == {(n,): parcel_target(n) for n in range(1, 46)}
    assert set(world.destination.checkpoints) == {"parcel"}
    assert world.destination.checkpoints["parcel"].phase == "idle"
    assert all(w.insert_only for w in world.destination.writes if w.rows)


def test_a_failed_range_resumes_after_its_own_checkpoint(
    parcels: Make, parcel_target: Make
) -> None:
    world = parcels(45, parallel=3)
    runner = InProcessRunner(world.source, world.destination, world.dead_letters)
    # the plan, then range 0's first batch, then a failure inside range 0
    world.destination.fail_writes = [None, None, ConnectionError("link down")]

    with pytest.raises(ConnectionError):
        world.sync("parcel", "full", runner=runner)
    saved = world.destination.checkpoints["parcel"]
    assert saved.phase == "full"
    assert "partitions" in saved.extra
    assert len(world.destination.live("parcel")) == 10

    # the rerun needs no runner of its own: the stored plan is finished in this process
    counts = world.sync("parcel")

    assert counts.inserted == 35
    assert world.destination.live("parcel") == {(n,): parcel_target(n) for n in range(1, 46)}
    assert world.destination.checkpoints["parcel"].phase == "idle"


def test_a_unique_rule_keeps_the_load_in_one_process(parcels: Make) -> None:
    world = parcels(20, parallel=2, validate=[{"field": "address", "rule": "unique"}])
    runner = InProcessRunner(world.source, world.destination, world.dead_letters)

    world.sync("parcel", "full", runner=runner)

    assert "partitions" not in world.destination.checkpoints["parcel"].extra
    assert set(world.destination.checkpoints) == {"parcel"}
