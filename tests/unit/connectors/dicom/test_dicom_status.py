from __future__ import annotations

import pytest

from pacsync.connectors.dicom.status import Category, Status, category, is_failure, named


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Status.SUCCESS, Category.SUCCESS),
        (Status.PENDING, Category.PENDING),
        (Status.PENDING_WARNING, Category.PENDING),
        (Status.CANCEL, Category.CANCEL),
        (Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES, Category.WARNING),
        (Status.ELEMENTS_DISCARDED, Category.WARNING),
        (Status.ATTRIBUTE_LIST_ERROR, Category.WARNING),
        (Status.MOVE_DESTINATION_UNKNOWN, Category.FAILURE),
        (0xA7FF, Category.FAILURE),
        (0xC123, Category.FAILURE),
        (0x0122, Category.FAILURE),
        (0x1234, Category.FAILURE),
    ],
)
def test_category(value: int, expected: Category) -> None:
    assert category(value) is expected


def test_failure_ranges_are_named() -> None:
    assert is_failure(0xC001)
    assert named(0xC001) == "0xC001 UNABLE_TO_PROCESS"
    assert named(0xA7F0) == "0xA7F0 OUT_OF_RESOURCES"
    assert named(0xA9AB) == "0xA9AB DATASET_DOES_NOT_MATCH_SOP_CLASS"
    assert named(Status.MOVE_DESTINATION_UNKNOWN) == "0xA801 MOVE_DESTINATION_UNKNOWN"
    assert named(0xB000) == "0xB000 SUB_OPERATIONS_COMPLETE_WITH_FAILURES"
    assert named(0xB0F0) == "0xB0F0 WARNING"
