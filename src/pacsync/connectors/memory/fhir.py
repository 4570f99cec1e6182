"""An in-memory FHIR server (:class:`pacsync.ports.FhirServer`) for unit tests of what
syncs with an EHR.

It keeps the contracts a sync relies on, as a real server does (the same cases run
against the real test server in tests/integration): every write makes a new version
(``meta.versionId`` 1, 2, …, ``meta.lastUpdated`` from its clock); ``update`` with
``if_match`` writes only over that version, else PACS-704; a conditional create returns
the one match; ``changed_since`` gives what changed after an instant, oldest first;
reading what is not there (or deleted) is PACS-702.  Searches understand ``_id``,
``identifier`` (``system|value``, ``|value``, ``system|``), ``patient``/``subject``,
``_lastUpdated`` (``gt``, ``ge``, ``lt``, ``le``, ``eq``), ``_count`` and ``_sort``;
another parameter is refused (PACS-707) so a test never passes on an ignored filter.

``fail_next`` makes the next calls fail with the errors given, in order (a server
that is down, rate-limits or refuses); ``resources`` and ``calls`` are there to assert
on.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pacsync.domain.fhir_resource import Versioned, etag_of, version_of
from pacsync.errors import (
    DataValidationError,
    FhirPreconditionFailed,
    FhirRequestRejected,
    FhirResourceNotFound,
    PacsyncError,
)
from pacsync.ports import FhirParams

JSON = dict[str, Any]
_PREFIXES = {"gt", "ge", "lt", "le", "eq"}
_IGNORED = {"_count", "_sort"}
_UNDERSTOOD = {*_IGNORED, "_id", "identifier", "patient", "subject", "_lastUpdated"}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _instant(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _pairs(params: FhirParams | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    return list(params.items() if isinstance(params, Mapping) else params)


class MemoryFhirServer:
    def __init__(self, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.clock = clock
        self.resources: dict[tuple[str, str], JSON] = {}  # current versions
        self.history: dict[tuple[str, str], list[JSON]] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.deleted_at: dict[tuple[str, str], dt.datetime] = {}
        self.calls: list[str] = []  # "PUT Patient/1", "GET Patient?identifier=…"
        self.fail_next: list[PacsyncError] = []
        self._ids = itertools.count(1)

    # -- helpers -----------------------------------------------------------------------

    def _called(self, what: str) -> None:
        self.calls.append(what)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _last_version(self, key: tuple[str, str]) -> int:
        versions = self.history.get(key) or []
        return int(versions[-1]["meta"]["versionId"]) if versions else 0

    def _write(self, resource: JSON, rid: str, status: int) -> Versioned:
        rtype = str(resource["resourceType"])
        key = (rtype, rid)
        stored = copy.deepcopy(resource)
        version = str(self._last_version(key) + 1)
        stored["id"] = rid
        stored["meta"] = {
            **(stored.get("meta") or {}),
            "versionId": version,
            "lastUpdated": _instant(self.clock()),
        }
        self.resources[key] = stored
        self.history.setdefault(key, []).append(copy.deepcopy(stored))
        self.deleted.discard(key)
        self.deleted_at.pop(key, None)
        return Versioned(copy.deepcopy(stored), etag_of(version), status, f"{rtype}/{rid}")

    @staticmethod
    def _type_of(resource: JSON) -> str:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not rtype:
            raise DataValidationError("a resource needs its resourceType")
        return rtype

    # -- the port ----------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Versioned:
        self._called(f"GET {resource_type}/{resource_id}")
        found = self.resources.get((resource_type, resource_id))
        if found is None:
            raise FhirResourceNotFound(f"GET {resource_type}/{resource_id}: HTTP 404")
        version = str(found["meta"]["versionId"])
        return Versioned(copy.deepcopy(found), etag_of(version), 200)

    def search(self, resource_type: str, params: FhirParams | None = None) -> Iterator[JSON]:
        pairs = _pairs(params)
        self._called(f"GET {resource_type}?" + "&".join(f"{k}={v}" for k, v in pairs))
        _understood(pairs)
        found = self._matching(resource_type, pairs)
        if ("_sort", "_lastUpdated") in pairs:
            found.sort(key=lambda r: _parse(r["meta"]["lastUpdated"]))
        return iter([copy.deepcopy(r) for r in found])

    def changed_since(
        self, resource_type: str, since: dt.datetime, params: FhirParams | None = None
    ) -> Iterator[JSON]:
        pairs = [
            *_pairs(params),
            ("_lastUpdated", f"gt{_instant(since)}"),
            ("_sort", "_lastUpdated"),
        ]
        return self.search(resource_type, pairs)

    def create(self, resource: JSON, *, if_none_exist: FhirParams | None = None) -> Versioned:
        rtype = self._type_of(resource)
        self._called(f"POST {rtype}")
        if if_none_exist:
            pairs = _pairs(if_none_exist)
            _understood(pairs)
            matches = [
                r
                for (t, _), r in self.resources.items()
                if t == rtype and all(self._matches(r, k, v) for k, v in pairs)
            ]
            if len(matches) > 1:
                raise FhirPreconditionFailed(
                    f"POST {rtype}: HTTP 412: If-None-Exist matched {len(matches)} resources"
                )
            if matches:
                found = matches[0]
                version = str(found["meta"]["versionId"])
                return Versioned(copy.deepcopy(found), etag_of(version), 200)
        return self._write(resource, str(next(self._ids)), 201)

    def update(self, resource: JSON, *, if_match: str | None = None) -> Versioned:
        rtype = self._type_of(resource)
        rid = resource.get("id")
        if not rid:
            raise DataValidationError(f"an update of a {rtype} needs its id")
        self._called(f"PUT {rtype}/{rid}")
        key = (rtype, str(rid))
        current = self.resources.get(key)
        if if_match is not None:
            held = str(current["meta"]["versionId"]) if current else None
            if held != version_of(if_match):
                raise FhirPreconditionFailed(
                    f"PUT {rtype}/{rid}: HTTP 412: If-Match {if_match} but the server holds "
                    + (f"version {held}" if held else "no such resource")
                )
        return self._write(resource, str(rid), 200 if current else 201)

    def conditional_update(self, resource: JSON, criteria: FhirParams) -> Versioned:
        rtype = self._type_of(resource)
        pairs = _pairs(criteria)
        self._called(f"PUT {rtype}?" + "&".join(f"{k}={v}" for k, v in pairs))
        _understood(pairs)
        matches = self._matching(rtype, pairs)
        if len(matches) > 1:
            raise FhirPreconditionFailed(f"PUT {rtype}?…: HTTP 412: {len(matches)} matches")
        rid = resource.get("id")
        if matches:
            if rid and rid != matches[0]["id"]:
                raise FhirRequestRejected(
                    f"PUT {rtype}?…: HTTP 400: the match is {rtype}/{matches[0]['id']}, not {rid}"
                )
            return self._write(resource, str(matches[0]["id"]), 200)
        return self._write(resource, str(rid or next(self._ids)), 201)

    def delete(self, resource_type: str, resource_id: str) -> None:
        self._called(f"DELETE {resource_type}/{resource_id}")
        key = (resource_type, resource_id)
        if self.resources.pop(key, None) is not None:
            self.deleted.add(key)
            self.deleted_at[key] = self.clock()

    def deleted_since(self, resource_type: str, since: dt.datetime) -> Iterator[str]:
        self._called(f"GET {resource_type}/_history?_since={_instant(since)}")
        return iter(
            sorted(
                rid for (t, rid), at in self.deleted_at.items() if t == resource_type and at > since
            )
        )

    # -- search parameters -------------------------------------------------------------

    def _matching(self, resource_type: str, pairs: list[tuple[str, str]]) -> list[JSON]:
        """The held resources of ``resource_type`` matching every search parameter."""
        return [
            r
            for (rtype, _), r in self.resources.items()
            if rtype == resource_type and all(self._matches(r, k, v) for k, v in pairs)
        ]

    def _matches(self, resource: JSON, name: str, value: str) -> bool:
        if name in _IGNORED:
            return True
        if name == "_id":
            return resource.get("id") in value.split(",")
        if name == "identifier":
            system, bar, code = value.rpartition("|")
            return any(
                (not bar or not system or i.get("system") == system)
                and (not code or i.get("value") == code)
                for i in resource.get("identifier") or []
            )
        if name in ("patient", "subject"):
            field = resource.get("subject") or resource.get("patient") or {}
            reference = str(field.get("reference") or "")
            return reference in (value, f"Patient/{value}")
        if name == "_lastUpdated":
            prefix = value[:2] if value[:2] in _PREFIXES else "eq"
            when = _parse(value[2:] if value[:2] in _PREFIXES else value)
            updated = _parse(resource["meta"]["lastUpdated"])
            return {
                "gt": updated > when,
                "ge": updated >= when,
                "lt": updated < when,
                "le": updated <= when,
                "eq": updated == when,
            }[prefix]
        return False


def _understood(pairs: list[tuple[str, str]]) -> None:
    for name, _ in pairs:
        if name not in _UNDERSTOOD:
            raise FhirRequestRejected(
                f"search parameter {name!r} is not understood by the in-memory FHIR server",
                hint="Use " + ", ".join(sorted(_UNDERSTOOD)) + ", or extend the fake.",
            )
