"""When a pipeline runs by itself: its ``schedule`` (cron expressions in a time zone)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, field_validator

from pacsync.domain.spec_base import Spec

SEED_FULL_CRON = "0 2 * * 0"  # Sunday 02:00
SEED_INCREMENTAL_CRON = "0 2 * * 1-6"  # Monday to Saturday 02:00


class ScheduleSpec(Spec):
    """When a pipeline runs by itself; cron in the given time zone, per sync mode."""

    full: str | None = Field(SEED_FULL_CRON, description="cron of the full sync (None: never)")
    incremental: str | None = Field(SEED_INCREMENTAL_CRON, description="cron of the incremental")
    timezone: str = "UTC"
    catch_up: Literal["skip", "latest", "all"] = Field(
        "latest",
        description="after downtime: skip missed runs, run the latest once, or run them all",
    )

    @field_validator("full", "incremental")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value, second_at_beginning=True):
            raise ValueError(
                f"'{value}' is not a cron expression (minute hour day month weekday, "
                "e.g. '0 2 * * 1-6'; six fields put seconds first)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{value}' (use an IANA name like America/Los_Angeles)"
            ) from None
        return value
