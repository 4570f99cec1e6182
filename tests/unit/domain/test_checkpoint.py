"""Checkpoints and their JSON form (pacsync.domain.checkpoint)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from pacsync.domain.checkpoint import Checkpoint, decode_value, encode_value

UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))


def round_trip(checkpoint: Checkpoint) -> Checkpoint:
    return Checkpoint.from_json(checkpoint.pipeline, checkpoint.entity, checkpoint.to_json())


@pytest.mark.parametrize(
    "cursor",
    [
        None,
        42,
        2.5,
        "2024-01-01",
        dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
        dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC_PLUS_2),
        dt.date(2024, 5, 6),
        Decimal("12345678901234567890.000123"),
        b"\x00\x00\x00\x00\x00\x01\xe2\x40",
    ],
)
def test_cursor_values_keep_their_type(cursor: Any) -> None:
    checkpoint = Checkpoint("county", "parcel", "v1", cursor=cursor)
    back = round_trip(checkpoint)
    assert back.cursor == cursor
    assert type(back.cursor) is type(cursor)
    if isinstance(cursor, dt.datetime):
        assert back.cursor.tzinfo == cursor.tzinfo


def test_keys_of_mixed_types_round_trip_as_tuples() -> None:
    key = (
        7,
        "A-1",
        dt.date(2020, 2, 29),
        Decimal("1.50"),
        b"\xff\x00",
        None,
        dt.datetime(2020, 2, 29, 23, 59, 59),
    )
    back = round_trip(Checkpoint("county", "parcel", "v1", phase="full", after_key=key))
    assert back.after_key == key
    assert [type(v) for v in back.after_key or ()] == [type(v) for v in key]


def test_every_field_round_trips() -> None:
    checkpoint = Checkpoint(
        pipeline="county",
        entity="parcel",
        mapping_version="abc123",
        phase="full",
        after_key=(10,),
        fresh=True,
        cursor=dt.datetime(2024, 1, 1),
        change_version=981,
        completed_runs=4,
        extra={"rewrite": True},
    )
    assert round_trip(checkpoint) == checkpoint


def test_json_is_plain_and_sorted() -> None:
    text = Checkpoint("county", "parcel", "v1", cursor=Decimal("1.5")).to_json()
    data = json.loads(text)
    assert data["cursor"] == {"t": "decimal", "v": "1.5"}
    assert list(data) == sorted(data)
    assert "pipeline" not in data


def test_from_json_fills_defaults_for_missing_items() -> None:
    back = Checkpoint.from_json("county", "parcel", '{"mapping_version": "v0"}')
    assert back == Checkpoint("county", "parcel", "v0")


def test_advance_returns_a_changed_copy() -> None:
    checkpoint = Checkpoint("county", "parcel", "v1")
    later = checkpoint.advance(cursor=5, completed_runs=1)
    assert (later.cursor, later.completed_runs) == (5, 1)
    assert (checkpoint.cursor, checkpoint.completed_runs) == (None, 0)


def test_encode_and_decode_leave_plain_values_alone() -> None:
    for value in (None, 1, "x", 1.5, True):
        assert encode_value(value) == value
        assert decode_value(value) == value
    assert decode_value(encode_value(bytearray(b"ab"))) == b"ab"
