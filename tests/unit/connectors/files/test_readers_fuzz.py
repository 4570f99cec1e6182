"""The file readers on arbitrary bytes: every record is numbered in order, and the only
error is a refusal of the file (never a crash of the run)."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsync.connectors.files.readers import open_records
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileRecord
from pacsync.errors import DropFileRefused

FORMATS: dict[str, dict[str, Any]] = {
    "csv": {"format": "csv", "columns": ["id", "name"]},
    "csv-latin1": {"format": "csv", "columns": ["id", "name"], "encoding": "latin-1"},
    "ndjson": {"format": "ndjson"},
    "json": {"format": "json"},
    "xml": {"format": "xml", "record_path": "P"},
}
PIECES = st.sampled_from(
    [b"id,name\n", b'"', b",", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\xff", b"{", b"}", b"[", b"]",
     b'"id": 1', b"<P>", b"</P>", b"<n>x</n>", b"<R>", b"</R>", b"<!DOCTYPE R>", b"&amp;", b"1"]
)  # fmt: skip
DATA = st.one_of(st.binary(max_size=300), st.lists(PIECES, max_size=40).map(b"".join))


def read_all(data: bytes, kind: str) -> tuple[list[FileRecord], DropFileRefused | None]:
    spec = DropSpec(drop="in", key=["id"], **FORMATS[kind])
    records: list[FileRecord] = []
    try:
        records.extend(open_records(io.BytesIO(data), spec, ["id", "name"]))
    except DropFileRefused as refused:
        return records, refused
    return records, None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=DATA, kind=st.sampled_from(sorted(FORMATS)))
def test_any_bytes_give_numbered_records_or_a_refusal(data: bytes, kind: str) -> None:
    records, refused = read_all(data, kind)
    assert refused is None or refused.message
    assert [r.index for r in records] == list(range(len(records)))
    for record in records:
        assert (record.values is None) == (record.problem is not None)
        if record.values is not None:
            assert len(record.values) == 2  # one value a column, whatever the record held
    lines = [r.line for r in records if r.line]
    assert lines == sorted(lines)
