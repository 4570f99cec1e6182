"""Schedules of pipelines: which sync runs when, and what to do about missed runs.

A schedule fires once per tick however many workers run (the engine keys each
tick's run on the schedule and the time).  After downtime the pipeline's
``catch_up`` policy decides: ``skip`` the missed ticks, run the ``latest`` one
once (the default: an incremental sync catches up everything anyway), or run
``all`` of them in order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from croniter import croniter

from pacsync.domain.spec import PipelineSpec
from pacsync.jobs.request import JobRequest


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    pipeline: str
    path: str
    mode: str
    cron: str
    timezone: str
    catch_up: str

    def request(self, tick: dt.datetime) -> JobRequest:
        """The job of one tick; its key makes every worker's submission the same job."""
        return JobRequest(
            kind="sync",
            pipeline=self.pipeline,
            path=self.path,
            mode=self.mode,
            trigger="schedule",
            key=f"schedule:{self.name}:{tick.astimezone(dt.UTC).isoformat()}",
        )

    def previous_tick(self, now: dt.datetime) -> dt.datetime:
        """The latest tick at or before ``now`` (aware, in the schedule's zone)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        it = croniter(self.cron, local, second_at_beginning=True)
        if croniter.match(self.cron, local, second_at_beginning=True):
            return local.replace(microsecond=0)
        previous: dt.datetime = it.get_prev(dt.datetime)
        return previous

    def next_tick(self, now: dt.datetime) -> dt.datetime:
        local = now.astimezone(ZoneInfo(self.timezone))
        following: dt.datetime = croniter(self.cron, local, second_at_beginning=True).get_next(
            dt.datetime
        )
        return following

    def missed(self, last_fired: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        """The tick to run now under the ``latest`` policy, if one was missed."""
        if self.catch_up != "latest" or last_fired is None:
            return None
        due = self.previous_tick(now)
        return due if due > last_fired else None


def schedules_of(spec: PipelineSpec, path: str) -> list[Schedule]:
    if spec.schedule is None:
        return []
    plan = spec.schedule
    found = []
    for mode, cron in (("full", plan.full), ("incremental", plan.incremental)):
        if cron:
            found.append(
                Schedule(
                    name=f"{spec.name}:{mode}",
                    pipeline=spec.name,
                    path=path,
                    mode=mode,
                    cron=cron,
                    timezone=plan.timezone,
                    catch_up=plan.catch_up,
                )
            )
    return found
