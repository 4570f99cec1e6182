"""What an inbound FHIR notification is about: the patients whose records to sync.

A FHIR server (or an EHR vendor's webhook) tells pacsync that something changed; it
says what in one of these shapes, all read by :func:`read_notification`:

- **R4 rest-hook without payload**: an empty body.  It names nothing, so it asks for
  an incremental sync of the connection (``kind`` ``ping``).
- **R4 rest-hook with payload**: the resource itself (POSTed to the endpoint, or PUT
  to ``endpoint/Type/id``).
- **Topic-based notification** (R4 Subscriptions Backport, R4B, R5): a Bundle of type
  ``history`` (or ``subscription-notification``) whose first entry is the
  SubscriptionStatus (a ``Parameters`` resource in R4): its ``type`` (``handshake``,
  ``heartbeat`` and ``query-status`` ask for nothing), each ``notification-event``'s
  ``focus`` and ``additional-context`` references, then the resources when the
  subscription asked for ``full-resource``; an event naming nothing (``empty``
  content) is a ``ping``.
- **Any other Bundle**: its entries' resources, and the references of entries
  without one (a deletion: ``request.url``).
- **A vendor's JSON webhook**: an object (or a list of them) naming ``patient`` /
  ``patientId`` / ``patient_id`` (an id, ``Patient/id``, or ``{reference}``) and/or
  ``resource`` / ``reference`` / ``focus`` (``Type/id``, an absolute URL, or
  ``{reference}``).

A Patient is its own patient; another resource's patient is its ``subject`` or
``patient`` reference (when that is a Patient).  A reference to another resource
without the resource is kept as a ``focus``: whoever acts on the notification finds
its patient (in the local copy, or on the server).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pacsync.errors import InvalidRequest

JSON = dict[str, Any]
Kind = Literal["event", "ping", "handshake", "heartbeat", "query-status"]
MAX_TARGETS = 100  # patients and foci one notification may name
PATIENT_KEYS = ("patient", "patientId", "patient_id", "patientID")
FOCUS_KEYS = ("resource", "reference", "focus", "resourceReference")
STATUS_TYPES = ("SubscriptionStatus", "Parameters")
# Type/id at the end of a relative or absolute reference, a version after it allowed
_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$"
)
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class Notification:
    """What a notification asks for: ``patients`` to sync, ``foci`` (``Type/id``) whose
    patient is still to be found; a ``ping`` names nothing (sync what changed)."""

    kind: Kind
    patients: tuple[str, ...] = ()
    foci: tuple[str, ...] = ()

    @property
    def names_records(self) -> bool:
        return bool(self.patients or self.foci)


def reference_parts(reference: Any) -> tuple[str, str] | None:
    """``(type, id)`` of ``Patient/1``, ``https://host/fhir/Patient/1/_history/2`` or
    ``{"reference": …}``; None for anything else (``urn:uuid:…``, ``#contained``)."""
    if isinstance(reference, Mapping):
        reference = reference.get("reference")
    if not isinstance(reference, str):
        return None
    found = _REFERENCE.search(reference.strip().split("?", 1)[0])
    return None if found is None else (found["type"], found["id"])


def patient_of(resource: Mapping[str, Any]) -> str | None:
    """The patient a resource is about: itself, or its subject/patient reference."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and _ID.match(rid) else None
    for name in ("subject", "patient"):
        parts = reference_parts(resource.get(name))
        if parts is not None and parts[0] == "Patient":
            return parts[1]
    return None


class _Collected:
    def __init__(self) -> None:
        self.patients: dict[str, None] = {}  # insertion-ordered sets
        self.foci: dict[str, None] = {}

    def resource(self, resource: Mapping[str, Any]) -> None:
        patient = patient_of(resource)
        if patient is not None:
            self.patients[patient] = None
            return
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(rtype, str) and isinstance(rid, str):
            self.reference(f"{rtype}/{rid}")

    def reference(self, reference: Any) -> None:
        parts = reference_parts(reference)
        if parts is None:
            return
        if parts[0] == "Patient":
            self.patients[parts[1]] = None
        else:
            self.foci[f"{parts[0]}/{parts[1]}"] = None

    def patient(self, value: Any) -> None:
        if isinstance(value, str) and _ID.match(value.strip()):
            self.patients[value.strip()] = None
        else:
            parts = reference_parts(value)
            if parts is not None and parts[0] == "Patient":
                self.patients[parts[1]] = None

    def notification(self, kind: Kind = "event") -> Notification:
        patients, foci = tuple(self.patients), tuple(f for f in self.foci)
        if len(patients) + len(foci) > MAX_TARGETS:
            raise InvalidRequest(
                f"the notification names {len(patients) + len(foci)} records; "
                f"at most {MAX_TARGETS} are taken at once",
                hint="Send a notification per change, or let a full sync run.",
            )
        return Notification(kind, patients, foci)


def read_notification(body: bytes, path_reference: str | None = None) -> Notification:
    """What the notification ``body`` asks for (see the module docstring);
    ``path_reference`` is ``Type/id`` when the server PUT the resource to
    ``endpoint/Type/id``.  InvalidRequest for a body that is not JSON or names
    nothing pacsync can sync."""
    text = body.strip()
    if not text:
        if path_reference is None:
            return Notification("ping")
        collected = _Collected()
        collected.reference(path_reference)
        return collected.notification()
    try:
        parsed = json.loads(text)
    except ValueError:
        raise InvalidRequest(
            "the notification is not JSON", hint="Send FHIR JSON, or an empty body."
        ) from None
    collected = _Collected()
    if isinstance(parsed, list):
        for item in parsed:
            _vendor(collected, item)
        return _named(collected.notification())
    if not isinstance(parsed, dict):
        raise InvalidRequest("the notification is neither a resource nor a JSON object")
    if parsed.get("resourceType") == "Bundle":
        kind = _bundle(collected, parsed)
        notification = collected.notification(kind)
        if kind == "event" and not notification.names_records:
            return Notification("ping")  # an event with empty content: something changed
        return notification
    if isinstance(parsed.get("resourceType"), str):
        if path_reference is not None and not parsed.get("id"):
            parts = reference_parts(path_reference)
            parsed = {**parsed, "id": parts[1]} if parts else parsed
        collected.resource(parsed)
        return _named(collected.notification())
    _vendor(collected, parsed)
    if path_reference is not None and not (collected.patients or collected.foci):
        collected.reference(path_reference)
    return _named(collected.notification())


def _named(notification: Notification) -> Notification:
    if not notification.names_records:
        raise InvalidRequest(
            "the notification names no patient or resource",
            hint="Name a patient (patient: ID) or a resource (resource: Type/id), "
            "or send the resource or a FHIR notification Bundle.",
        )
    return notification


def _vendor(collected: _Collected, item: Any) -> None:
    if not isinstance(item, Mapping):
        return
    if isinstance(item.get("resourceType"), str):
        collected.resource(item)
        return
    for key in PATIENT_KEYS:
        if item.get(key):
            collected.patient(item[key])
    for key in FOCUS_KEYS:
        if item.get(key):
            collected.reference(item[key])
    for nested in ("events", "entries", "data"):
        inner = item.get(nested)
        for each in inner if isinstance(inner, list) else [inner] if inner else []:
            _vendor(collected, each)


def _bundle(collected: _Collected, bundle: Mapping[str, Any]) -> Kind:
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, Mapping)]
    first = entries[0].get("resource") if entries else None
    kind: Kind = "event"
    if isinstance(first, Mapping) and first.get("resourceType") in STATUS_TYPES:
        kind = _status(collected, first)
        entries = entries[1:]
        if kind != "event":
            return kind
    for entry in entries:
        resource = entry.get("resource")
        if isinstance(resource, Mapping) and resource.get("resourceType") not in STATUS_TYPES:
            collected.resource(resource)
            continue
        request = entry.get("request")
        if isinstance(request, Mapping):  # a deletion names what it deleted
            collected.reference(request.get("url"))
        elif entry.get("fullUrl"):
            collected.reference(entry["fullUrl"])
    return kind


def _status(collected: _Collected, status: Mapping[str, Any]) -> Kind:
    """Read a SubscriptionStatus (R4B/R5) or its R4 backport Parameters."""
    if status.get("resourceType") == "SubscriptionStatus":
        kind = str(status.get("type") or "event-notification")
        for event in status.get("notificationEvent") or []:
            if isinstance(event, Mapping):
                collected.reference(event.get("focus"))
                for context in event.get("additionalContext") or []:
                    collected.reference(context)
        return _kind(kind)
    kind = "event-notification"
    for parameter in status.get("parameter") or []:
        if not isinstance(parameter, Mapping):
            continue
        if parameter.get("name") == "type":
            kind = str(parameter.get("valueCode") or kind)
        if parameter.get("name") in ("notification-event", "notificationEvent"):
            for part in _parts(parameter.get("part")):
                if part.get("name") in ("focus", "additional-context", "additionalContext"):
                    collected.reference(part.get("valueReference"))
    return _kind(kind)


def _parts(parts: Any) -> Iterable[Mapping[str, Any]]:
    return [p for p in parts or [] if isinstance(p, Mapping)]


def _kind(text: str) -> Kind:
    if text in ("handshake", "heartbeat", "query-status"):
        return text  # type: ignore[return-value]
    return "event"


__all__ = ["MAX_TARGETS", "Notification", "patient_of", "read_notification", "reference_parts"]
