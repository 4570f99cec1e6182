"""DIMSE status codes (PS3.7 Annex C) as named constants, and their classification.

A status is a 16-bit value; some meanings are single codes, others whole ranges
(``0xA7xx`` out of resources, ``0xCxxx`` unable to process).  :func:`category`
says which of success / warning / failure / pending / cancel a status falls in,
so callers never compare against raw numbers.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Status(IntEnum):
    """DIMSE status values used by Verification, Storage and Query/Retrieve."""

    SUCCESS = 0x0000
    # pending (C-FIND, C-MOVE, C-GET)
    PENDING = 0xFF00
    PENDING_WARNING = 0xFF01  # C-FIND: one or more optional keys not supported
    # cancel
    CANCEL = 0xFE00
    # warnings
    ATTRIBUTE_LIST_ERROR = 0x0107
    ATTRIBUTE_OUT_OF_RANGE = 0x0116
    SUB_OPERATIONS_COMPLETE_WITH_FAILURES = 0xB000  # C-MOVE / C-GET
    COERCION_OF_DATA_ELEMENTS = 0xB000  # C-STORE (same code)
    ELEMENTS_DISCARDED = 0xB006
    DATASET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007
    # failures (general)
    NO_SUCH_ATTRIBUTE = 0x0105
    INVALID_ATTRIBUTE_VALUE = 0x0106
    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111
    NO_SUCH_SOP_INSTANCE = 0x0112
    NO_SUCH_EVENT_TYPE = 0x0113
    NO_SUCH_ARGUMENT = 0x0114
    INVALID_ARGUMENT_VALUE = 0x0115
    INVALID_OBJECT_INSTANCE = 0x0117
    NO_SUCH_SOP_CLASS = 0x0118
    CLASS_INSTANCE_CONFLICT = 0x0119
    MISSING_ATTRIBUTE = 0x0120
    MISSING_ATTRIBUTE_VALUE = 0x0121
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NO_SUCH_ACTION = 0x0123
    NOT_AUTHORIZED = 0x0124
    DUPLICATE_INVOCATION = 0x0210
    UNRECOGNIZED_OPERATION = 0x0211
    MISTYPED_ARGUMENT = 0x0212
    RESOURCE_LIMITATION = 0x0213
    # failures (service specific)
    OUT_OF_RESOURCES = 0xA700  # 0xA7xx
    OUT_OF_RESOURCES_MATCHES = 0xA701  # C-MOVE / C-GET: cannot calculate the matches
    OUT_OF_RESOURCES_SUB_OPERATIONS = 0xA702  # C-MOVE / C-GET: cannot do sub-operations
    MOVE_DESTINATION_UNKNOWN = 0xA801
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # 0xA9xx; C-FIND: identifier mismatch
    UNABLE_TO_PROCESS = 0xC000  # 0xCxxx
    UNABLE_TO_PROCESS_LAST = 0xCFFF


class Category(StrEnum):
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    PENDING = "pending"
    CANCEL = "cancel"


_WARNINGS = frozenset({Status.ATTRIBUTE_LIST_ERROR, Status.ATTRIBUTE_OUT_OF_RANGE})
_PENDING = frozenset({Status.PENDING, Status.PENDING_WARNING})


def category(status: int) -> Category:
    """The category of a DIMSE status value (unknown values count as failures)."""
    if status == Status.SUCCESS:
        return Category.SUCCESS
    if status in _PENDING:
        return Category.PENDING
    if status == Status.CANCEL:
        return Category.CANCEL
    if status in _WARNINGS or 0xB000 <= status <= 0xBFFF:
        return Category.WARNING
    return Category.FAILURE


def is_success(status: int) -> bool:
    return category(status) is Category.SUCCESS


def is_pending(status: int) -> bool:
    return category(status) is Category.PENDING


def is_failure(status: int) -> bool:
    return category(status) is Category.FAILURE


def is_out_of_resources(status: int) -> bool:
    return Status.OUT_OF_RESOURCES <= status <= 0xA7FF


def is_unable_to_process(status: int) -> bool:
    return Status.UNABLE_TO_PROCESS <= status <= Status.UNABLE_TO_PROCESS_LAST


def named(status: int) -> str:
    """A status for people: ``0xA801 MOVE_DESTINATION_UNKNOWN``."""
    try:
        name = Status(status).name
    except ValueError:
        if is_out_of_resources(status):
            name = "OUT_OF_RESOURCES"
        elif is_unable_to_process(status):
            name = "UNABLE_TO_PROCESS"
        elif 0xA900 <= status <= 0xA9FF:
            name = "DATASET_DOES_NOT_MATCH_SOP_CLASS"
        else:
            name = category(status).value.upper()
    return f"0x{status:04X} {name}"
