"""Charts drawn on the server as SVG (no script, no library): records synced per day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 48, 28, 12


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    title: str


@dataclass(frozen=True)
class DailyChart:
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # y and label of each horizontal grid line
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return all(b.value == 0 for b in self.bars)


def _nice_max(value: int) -> int:
    if value <= 0:
        return 1
    step = 1
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if value <= factor * step:
            return factor * step
    return 10 * step


def daily_records(counts: dict[dt.date, int], today: dt.date, days: int = 14) -> DailyChart:
    """One bar per day for the ``days`` days up to ``today``, with a labelled scale."""
    first = today - dt.timedelta(days=days - 1)
    top = _nice_max(max(counts.values(), default=0))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    slot = plot_w / days
    bars = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        value = counts.get(day, 0)
        height = plot_h * value / top
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.15, 1),
                y=round(HEIGHT - BOTTOM - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                label=day.strftime("%d %b") if i % 2 == (days - 1) % 2 else "",
                value=value,
                title=f"{day.isoformat()}: {value:,} records",
            )
        )
    ticks = [(round(HEIGHT - BOTTOM - plot_h * f, 1), f"{int(top * f):,}") for f in (0, 0.5, 1)]
    return DailyChart(bars=bars, ticks=ticks)
