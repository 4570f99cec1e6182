"""A FHIR resource as a server holds it: the resource and the version to write it back
over (its ETag, ``W/"3"`` for version 3), for If-Match writes that notice a change made
since the read instead of overwriting it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class Versioned:
    """A resource as the server holds it, with the ETag to write it back with."""

    resource: JSON
    etag: str | None
    status: int  # the HTTP status of the answer: 200, or 201 when it was created
    location: str | None = None

    @property
    def version(self) -> str | None:
        meta = self.resource.get("meta") or {}
        return str(meta["versionId"]) if meta.get("versionId") else None

    @property
    def created(self) -> bool:
        return self.status == 201


def etag_of(version: str | None) -> str | None:
    """The weak ETag of a version id (``3`` → ``W/"3"``)."""
    return None if version is None else f'W/"{version}"'


def version_of(etag: str) -> str:
    """The version id in an ETag (``W/"3"`` → ``3``); a bare version id as it is."""
    return etag.strip().removeprefix("W/").strip('"')
