"""The segment splitter against an independent implementation: the ``hl7`` package.

Processing splits messages with the message's own delimiters; the ``hl7`` package's
parse of the same text, normalised to field → repetition → component →
subcomponent, must give the same values for every segment and field."""

from __future__ import annotations

from typing import Any

import hl7
import pytest
from hl7_fixture_files import all_names, message_text
from hypothesis import given, settings
from hypothesis import strategies as st

from pacsync.connectors.hl7.segments import split


def _components(node: Any) -> tuple[str, ...]:
    return (node,) if isinstance(node, str) else tuple(str(part) for part in node)


def _field(node: Any) -> tuple[tuple[tuple[str, ...], ...], ...]:
    if isinstance(node, str):
        return (((node,),),)
    if len(node) == 1 and isinstance(node[0], str):
        return (((node[0],),),)
    return tuple(
        ((rep,),) if isinstance(rep, str) else tuple(_components(c) for c in rep) for rep in node
    )


def _by_package(text: str) -> list[tuple[str, tuple[Any, ...]]]:
    parsed = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r").strip("\r"))
    found = []
    for raw in parsed:
        name = str(raw[0])
        fields = tuple(_field(node) for node in raw[1:])
        if name == "MSH":  # the package's MSH-1 is the separator: values start at MSH-3
            fields = fields[2:]
        found.append((name, fields))
    return found


def _ours(text: str) -> list[tuple[str, tuple[Any, ...]]]:
    found = []
    for segment in split(text):
        fields = segment.fields[2:] if segment.name == "MSH" else segment.fields
        found.append((segment.name, fields))
    return found


@pytest.mark.parametrize("name", all_names())
def test_every_fixture_splits_as_the_hl7_package_does(name: str) -> None:
    text = message_text(name)
    assert _ours(text) == _by_package(text)


_value = st.text(alphabet="abcXYZ019 .-&^~", max_size=12)
_segment = st.lists(_value, min_size=1, max_size=8).map("|".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(_segment, min_size=1, max_size=5))
def test_generated_messages_split_as_the_hl7_package_does(bodies: list[str]) -> None:
    text = "MSH|^~\\&|APP|FAC|||20240101||ADT^A01|1|P|2.5\r" + "\r".join(
        f"Z{i:02d}|{body}" for i, body in enumerate(bodies)
    )
    assert _ours(text) == _by_package(text)
