"""The dashboard's parts without a server: the chart, HL7 fields by name, and masking
a pipeline file's passwords."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pacsync.api.dashboard.charts import daily_records
from pacsync.api.dashboard.hl7_fields import segments
from pacsync.api.dashboard.views import masked_text

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "hl7"


def test_the_chart_has_a_bar_a_day_scaled_to_a_round_maximum() -> None:
    today = dt.date(2026, 3, 14)
    chart = daily_records({today: 840, today - dt.timedelta(days=2): 420}, today, days=7)
    assert len(chart.bars) == 7
    assert [b.value for b in chart.bars][-3:] == [420, 0, 840]
    assert [label for _, label in chart.ticks] == ["0", "500", "1,000"]
    tallest = chart.bars[-1]
    assert tallest.y + tallest.height == chart.baseline
    assert chart.bars[-3].height == tallest.height / 2
    assert not chart.empty
    assert daily_records({}, today).empty


def test_segments_name_their_fields() -> None:
    text = (FIXTURES / "adt_a01.hl7").read_text(encoding="utf-8")
    found = {s.name: s for s in segments(text)}
    msh = {f.position: f for f in found["MSH"].fields}
    assert msh["MSH-1"].value == "|"
    assert msh["MSH-9"].name == "Message Type"
    assert msh["MSH-10"].value == "MSG00001"
    pid = {f.position: f for f in found["PID"].fields}
    assert pid["PID-5"].name == "Patient Name"
    assert pid["PID-5"].value.startswith("Brennan^Siobhan")
    assert all(f.value for f in found["PID"].fields)  # empty fields are left out


def test_a_password_in_a_url_is_masked_and_a_variable_is_kept() -> None:
    assert masked_text("url: mssql+pymssql://u:s3cret@db/x") == (
        "url: mssql+pymssql://u:***@db/x",
        False,
    )
    kept = "url: mssql+pymssql://u:${PACS_DB_PASSWORD}@db/x\nother: ${LEGACY_DB_URL}"
    assert masked_text(kept) == (kept, True)
