"""Schedules fired by real workers: once per tick however many race, and the catch-up
policy after downtime (the latest missed tick runs once)."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from .assessment import Deployment
from .test_workers import Worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVERY_2_S = "*/2 * * * * *"  # six fields: seconds first


@pytest.fixture
def scheduled(pacsync: Any, recipe: Any, tmp_path: Path) -> Deployment:
    legacy = tmp_path / "legacy.db"
    recipe.generate.generate(f"sqlite:///{legacy}", scale=0.02, seed=7)
    pacsync.env.update(
        {
            "LEGACY_DB_URL": f"sqlite:///{legacy}",
            "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
            "PACSYNC_PIPELINES_DIR": str(recipe.folder),
            "PACS_FULL_SYNC_CRON": "0 0 1 1 *",
            "PACS_INCREMENTAL_SYNC_CRON": EVERY_2_S,
            "PACS_TIMEZONE": "America/Los_Angeles",
        }
    )
    return Deployment(recipe.pipeline, pacsync.env)


def _ticks(deployment: Deployment) -> list[dt.datetime]:
    """The tick of every scheduled job, from its key (schedule:PIPELINE:MODE:ISO-TIME)."""
    return sorted(
        dt.datetime.fromisoformat(job.request["key"].split(":", 3)[3])
        for job in deployment.jobs()
        if job.trigger == "schedule" and job.request
    )


def test_two_workers_racing_the_same_ticks_run_each_tick_once(
    pacsync: Any, scheduled: Deployment
) -> None:
    racers = [Worker(pacsync, "racer-1"), Worker(pacsync, "racer-2")]
    try:
        for racer in racers:
            racer.wait_ready()
        listed = pacsync("schedule", "list")
        assert "property-assessment:incremental" in listed.stdout
        assert "active" in listed.stdout
        time.sleep(9)
    finally:
        for racer in racers:
            racer.stop()
    ticks = _ticks(scheduled)
    assert len(ticks) >= 3, ticks
    assert len(set(ticks)) == len(ticks)  # no tick twice
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {2.0}, ticks  # and none missed while both ran


def test_after_downtime_only_the_latest_missed_tick_runs(
    pacsync: Any, scheduled: Deployment
) -> None:
    first = Worker(pacsync, "solo")
    first.wait_ready()
    time.sleep(4)
    first.stop()
    before = _ticks(scheduled)
    assert before, "the schedule never fired"
    down_at = dt.datetime.now(dt.UTC)
    time.sleep(7)  # three ticks or more go by with no worker
    restart_at = dt.datetime.now(dt.UTC)
    second = Worker(pacsync, "solo")
    second.wait_ready()
    up_at = dt.datetime.now(dt.UTC)
    second.stop()
    ran = [t for t in _ticks(scheduled) if down_at < t <= up_at]
    while_down = [t for t in ran if t < restart_at]
    # of the three or more ticks missed while down, one at most ran (not all of them)
    assert len(while_down) <= 1, (ran, down_at, restart_at)
    # and the schedule went on: the latest missed tick, or the first after the restart
    assert ran, (down_at, up_at)
    assert up_at - ran[0] < dt.timedelta(seconds=8)
