"""De-identified display of clinical messages for callers who may not see PHI.

The segments that carry a person's identity (patient, next of kin, guarantor,
insurance) keep their structure and set ids but every value is masked; other
segments (orders, results, charges) are shown as they are, but for the visit's
number and its admission and discharge times (PV1-19, -44, -45, -50; PV2-8, -9),
which single out a patient's stay.  Identifiers shown
elsewhere keep only their last characters, and the values an error quotes from a
message (``PID-7.1: '1970-13-45' does not follow ...``) are masked.
"""

from __future__ import annotations

import re
from typing import Any

PHI_SEGMENTS = frozenset({"PID", "PD1", "NK1", "GT1", "IN1", "IN2", "IN3", "MRG", "ROL"})
PHI_FIELDS = {"PV1": frozenset({19, 44, 45, 50}), "PV2": frozenset({8, 9})}
MASK = "***"


def mask_identifier(value: str | None, keep: int = 2) -> str | None:
    """``12345678`` as ``******78``: enough to tell two apart, not to identify."""
    if not value:
        return value
    shown = value[-keep:] if len(value) > keep * 2 else ""
    return "*" * (len(value) - len(shown)) + shown


def mask_message(text: str, separator: str = "|") -> str:
    """The message with every value of its PHI segments masked (set ids kept)."""
    lines = []
    for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        name = line[:3]
        if name in PHI_SEGMENTS and line[3:4] == separator:
            fields = line.split(separator)
            masked = [fields[0], fields[1]] if len(fields) > 1 else [fields[0]]
            masked += [MASK if value else "" for value in fields[2:]]
            lines.append(separator.join(masked))
        elif name in PHI_FIELDS and line[3:4] == separator:
            fields = line.split(separator)
            for index in PHI_FIELDS[name]:
                if index < len(fields) and fields[index]:
                    fields[index] = MASK
            lines.append(separator.join(fields))
        else:
            lines.append(line)
    return "\r".join(lines)


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')  # repr() of a value


def mask_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """A coded error with every value it quotes masked: what failed and where stay."""
    if not error:
        return error
    masked = dict(error)
    for name in ("message", "hint"):
        if isinstance(masked.get(name), str):
            masked[name] = _QUOTED.sub(f"'{MASK}'", masked[name])
    return masked


__all__ = ["MASK", "PHI_FIELDS", "PHI_SEGMENTS", "mask_error", "mask_identifier", "mask_message"]
