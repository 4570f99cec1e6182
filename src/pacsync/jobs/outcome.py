"""Errors as they cross a durable step: plain dictionaries, rebuilt on the other side."""

from __future__ import annotations

from typing import Any

from pacsync.errors import PacsyncError


def _classes(base: type[PacsyncError]) -> dict[str, type[PacsyncError]]:
    found = {base.code: base}
    for sub in base.__subclasses__():
        for code, cls in _classes(sub).items():
            found.setdefault(code, cls)
    return found


def error_to_dict(error: PacsyncError | None) -> dict[str, Any] | None:
    return None if error is None else dict(error.as_dict())


def error_from_dict(data: dict[str, Any] | None) -> PacsyncError | None:
    """The error a dictionary describes, of the class its code names."""
    if data is None:
        return None
    cls = _classes(PacsyncError).get(str(data.get("code")), PacsyncError)
    return cls(
        str(data.get("message", "")), hint=data.get("hint"), connection=data.get("connection")
    )
