"""Modality Worklist C-FIND answers (PS3.4 Annex K): a worklist identifier read as
matching keys, and each matching scheduled procedure step as the identifier asked
for it.

The matching keys are the identifier's top-level attributes and those of its first
Scheduled Procedure Step Sequence item, by keyword (sequences inside them are not
matched).  An answer holds every attribute the identifier asked for: the step's
value, or empty when the worklist does not hold it; a Scheduled Procedure Step
Sequence asked for without an item gets an item with every step attribute."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from pacsync.domain.worklist import STEP_KEYS, ScheduledProcedure

STEP_SEQUENCE: Final = "ScheduledProcedureStepSequence"
_NOT_KEYS: Final = frozenset({"SpecificCharacterSet", "QueryRetrieveLevel"})
UTF8: Final = "ISO_IR 192"

Find = Callable[[Mapping[str, str]], Iterable[ScheduledProcedure]]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _step(identifier: Dataset) -> Dataset | None:
    steps = identifier.get(STEP_SEQUENCE)
    return steps[0] if steps else None


def keys_of(identifier: Dataset) -> dict[str, str]:
    """The identifier's matching values by keyword (empty ones left out)."""
    keys: dict[str, str] = {}
    step = _step(identifier)
    for ds in (identifier, step) if step is not None else (identifier,):
        for element in ds:
            keyword = element.keyword
            if not keyword or keyword in _NOT_KEYS or element.VR == "SQ":
                continue
            value = _text(element.value)
            if value:
                keys[keyword] = value
    return keys


def _asked(ds: Dataset) -> list[str]:
    return [e.keyword for e in ds if e.keyword and e.keyword not in _NOT_KEYS]


def _put(ds: Dataset, keyword: str, held: Mapping[str, str]) -> None:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return
    vr = dictionary_VR(tag)
    if vr == "SQ":
        ds.add_new(tag, vr, Sequence())
        return
    value = held.get(keyword)
    ds.add_new(tag, vr, value if value else None)


def answer(identifier: Dataset, procedure: ScheduledProcedure) -> Dataset:
    """The answer for one matching step: the identifier's attributes with its values."""
    held = procedure.attributes()
    ds = Dataset()
    if any(not v.isascii() for v in held.values()):
        ds.SpecificCharacterSet = UTF8
    for keyword in _asked(identifier):
        if keyword != STEP_SEQUENCE:
            _put(ds, keyword, held)
            continue
        asked = _step(identifier)
        wanted = _asked(asked) if asked is not None else sorted(STEP_KEYS)
        item = Dataset()
        for inner in wanted:
            _put(item, inner, held)
        ds.ScheduledProcedureStepSequence = Sequence([item])
    return ds


def answers(identifier: Dataset, find: Find) -> Iterator[Dataset]:
    """An answer for each step ``find`` matches to the identifier's keys."""
    keys = keys_of(identifier)
    for procedure in find(keys):
        yield answer(identifier, procedure)
