"""Query/Retrieve over the archive index (PS3.4 Annex C), as pynetdicom handlers.

C-FIND translates the identifier's keys into an index :class:`Query` at the
PATIENT, STUDY, SERIES or IMAGE level (wild cards, date ranges and UID lists as the
index matches them), answers one Pending identifier per match holding the keys
that were asked for (a key the index does not hold is returned empty), stops on
C-CANCEL, and ends with Success.  PATIENT level results are the patients of the
matching studies.

C-MOVE and C-GET find the instances the identifier names (the studies, series or
instances of its unique keys; at PATIENT level every study of the patient ID) and
send them by C-STORE sub-operations, to the destination AE looked up among the
configured peers (unknown: Move Destination Unknown) or on the same association.
The instances are read through ``locate``: the wiring knows where each archive
keeps its bytes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final, Protocol

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.presentation import PresentationContext

from pacsync.connectors.dicom.status import Status
from pacsync.errors import PacsyncError
from pacsync.imaging.search import MAX_LIMIT, IndexSearch, Level, Query, keys_of

log = logging.getLogger("pacsync.dicom.qr")

LEVELS: Final[dict[str, Level]] = {
    "PATIENT": "study",
    "STUDY": "study",
    "SERIES": "series",
    "IMAGE": "instance",
}
PATIENT_KEYS: Final = frozenset(
    {"PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex"}
)
UNIQUE_KEYS: Final = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
_NOT_KEYS: Final = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})
_MAX_CONTEXTS: Final = 128
MAX_SUB_OPERATIONS: Final = 65535


@dataclass(frozen=True, slots=True)
class Instance:
    """An instance to send, with the way to read its Part 10 bytes."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    load: Callable[[], bytes]


class Locate(Protocol):
    def __call__(
        self, study_uid: str | None, series_uid: str | None, sop_uid: str | None
    ) -> Sequence[Instance]:
        """The indexed instances of a study, a series or one instance (none: empty)."""
        ...


Destination = Callable[[str], Any]  # AE title -> a peer with host and port, or None


class Unprocessable(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# -- C-FIND -----------------------------------------------------------------------------------


def find(
    event: evt.Event, search: IndexSearch, *, retrieve_ae: str
) -> Iterator[tuple[int, Dataset | None]]:
    try:
        identifier = event.identifier
        level, query_level = _level(identifier)
        match = _match(identifier, query_level)
    except (Unprocessable, PacsyncError) as error:
        yield _refused(error)
        return
    asked = [e.keyword for e in identifier if e.keyword and e.keyword not in _NOT_KEYS]
    try:
        rows = _rows(search, query_level, match)
        if level == "PATIENT":
            rows = _patients(rows)
        for row in rows:
            if event.is_cancelled:
                yield Status.CANCEL, None
                return
            yield Status.PENDING, _answer(level, asked, row, retrieve_ae)
    except PacsyncError as error:
        log.warning("C-FIND failed: %s", error)
        yield Status.UNABLE_TO_PROCESS, None
        return
    yield Status.SUCCESS, None


def worklist_find(
    event: evt.Event, worklist: Callable[[Dataset], Iterable[Dataset]]
) -> Iterator[tuple[int, Dataset | None]]:
    for item in worklist(event.identifier):
        if event.is_cancelled:
            yield Status.CANCEL, None
            return
        yield Status.PENDING, item
    yield Status.SUCCESS, None


def _level(identifier: Dataset) -> tuple[str, Level]:
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in LEVELS:
        raise Unprocessable(
            Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"Query/Retrieve Level {level or '(none)'} is not PATIENT, STUDY, SERIES or IMAGE",
        )
    return level, LEVELS[level]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _match(identifier: Dataset, level: Level) -> dict[str, str]:
    keys = keys_of(level)
    match: dict[str, str] = {}
    for element in identifier:
        keyword = element.keyword
        if keyword in keys and element.VR != "SQ":
            value = _text(element.value)
            if value:
                match[keyword] = value
    return match


def _rows(search: IndexSearch, level: Level, match: dict[str, str]) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = search.search(Query.build(level, match, limit=MAX_LIMIT, offset=offset))
        yield from page
        if len(page) < MAX_LIMIT:
            return
        offset += len(page)


def _patients(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        key = (row.get("IssuerOfPatientID"), row.get("PatientID"), row.get("PatientName"))
        if key not in seen:
            seen.add(key)
            yield {k: v for k, v in row.items() if k in PATIENT_KEYS}


def _answer(level: str, asked: list[str], row: dict[str, Any], retrieve_ae: str) -> Dataset:
    ds = Dataset()
    values = {**row, "RetrieveAETitle": retrieve_ae}
    wanted = [*asked] if UNIQUE_KEYS[level] in asked else [*asked, UNIQUE_KEYS[level]]
    text = [str(v) for v in row.values() if isinstance(v, str)]
    if any(not t.isascii() for t in text):
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    for keyword in wanted:
        value = values.get(keyword)
        setattr(ds, keyword, _value(value))
    return ds


def _value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and "\\" in value:
        return value.split("\\")
    return value


def _refused(error: Exception) -> tuple[int, None]:
    status = error.status if isinstance(error, Unprocessable) else Status.UNABLE_TO_PROCESS
    log.warning("C-FIND refused (%s): %s", status.name, error)
    return status, None


# -- C-MOVE and C-GET -------------------------------------------------------------------------


_FAILED_TO_READ: Final = "unreadable"  # yielded instead of a dataset: a failed sub-operation


def instances(identifier: Dataset, search: IndexSearch, locate: Locate) -> list[Instance]:
    """The instances a retrieve identifier names, in study, series and instance order."""
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in LEVELS:
        raise Unprocessable(
            Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"Query/Retrieve Level {level or '(none)'} is not PATIENT, STUDY, SERIES or IMAGE",
        )
    unique = _text(identifier.get(UNIQUE_KEYS[level], ""))
    if not unique:
        raise Unprocessable(Status.UNABLE_TO_PROCESS, f"no {UNIQUE_KEYS[level]} to retrieve")
    values = [v for v in unique.split("\\") if v]
    found: list[Instance] = []
    if level == "PATIENT":
        studies = {row["StudyInstanceUID"] for row in _rows(search, "study", {"PatientID": unique})}
        for study in sorted(studies):
            found += locate(study, None, None)
    elif level == "STUDY":
        for study in values:
            found += locate(study, None, None)
    elif level == "SERIES":
        for series in values:
            found += locate(None, series, None)
    else:
        for sop in values:
            found += locate(None, None, sop)
    return found


def contexts(found: Sequence[Instance]) -> list[PresentationContext]:
    """Presentation contexts to send ``found``: per SOP class its instances' transfer
    syntaxes, then explicit and implicit VR little endian."""
    syntaxes: dict[str, list[str]] = {}
    for instance in found:
        listed = syntaxes.setdefault(instance.sop_class_uid, [])
        if instance.transfer_syntax_uid not in listed:
            listed.append(instance.transfer_syntax_uid)
    out = []
    for sop_class, listed in syntaxes.items():
        for fallback in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if fallback not in listed:
                listed.append(fallback)
        out.append(build_context(sop_class, listed))
    return out[:_MAX_CONTEXTS]


def _datasets(
    event: evt.Event, found: Sequence[Instance]
) -> Iterator[tuple[int, Dataset | str | None]]:
    for instance in found:
        if event.is_cancelled:
            yield Status.CANCEL, None
            return
        try:
            dataset = dcmread(BytesIO(instance.load()))
        except Exception as error:  # a sub-operation fails; the others go on
            log.warning("cannot read %s to send it: %s", instance.sop_instance_uid, error)
            yield Status.PENDING, _FAILED_TO_READ
            continue
        yield Status.PENDING, dataset


def move(
    event: evt.Event,
    search: IndexSearch,
    locate: Locate,
    destination: Destination,
    handlers: Sequence[Any] = (),
) -> Iterator[Any]:
    """``handlers``: event handlers of the sub-association to the destination."""
    destination_ae = str(event.move_destination).strip()
    peer = destination(destination_ae)
    if peer is None:
        log.warning("C-MOVE to unknown destination %s", destination_ae)
        yield None, None  # pynetdicom answers Move Destination Unknown
        return
    try:
        found = instances(event.identifier, search, locate)
    except (Unprocessable, PacsyncError) as error:
        yield peer.host, peer.port
        yield 1
        yield _refused(error)
        return
    options = {"contexts": contexts(found) or None, "evt_handlers": list(handlers)}
    yield peer.host, peer.port, options
    yield from _send(event, found)


def get(event: evt.Event, search: IndexSearch, locate: Locate) -> Iterator[Any]:
    try:
        found = instances(event.identifier, search, locate)
    except (Unprocessable, PacsyncError) as error:
        yield 1
        yield _refused(error)
        return
    yield from _send(event, found)


def _send(event: evt.Event, found: Sequence[Instance]) -> Iterator[Any]:
    if len(found) > MAX_SUB_OPERATIONS:
        yield 1
        yield Status.OUT_OF_RESOURCES_MATCHES, None
        return
    yield len(found)
    yield from _datasets(event, found)
