"""pacsync as a service class user: echo, find, move, get and store with a DICOM node.

Each operation takes a :class:`DicomNode` (a fresh association, released at the
end) or a :class:`Session` (associations reused across operations).  A failure
status from the node is a :class:`DimseFailure` naming the status; a node that
drops the association mid-operation a :class:`ConnectionTimeout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsync.connectors.dicom.association import Session, session
from pacsync.connectors.dicom.metrics import Operation, recorded
from pacsync.connectors.dicom.query import (
    Level,
    QueryCache,
    answer,
    identifier,
)
from pacsync.connectors.dicom.status import Category, Status, category, named
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConnectionTimeout, DimseFailure, InvalidDicom, InvalidRequest

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)

#: Storage SOP classes offered for C-GET sub-operations (PS3.4 Annex B).
GET_STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray (presentation)
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography (presentation)
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
)

_cache = QueryCache()


@dataclass(frozen=True)
class SubOperations:
    """The sub-operation counts of a C-MOVE or C-GET response."""

    completed: int = 0
    remaining: int = 0
    failed: int = 0
    warning: int = 0

    @property
    def total(self) -> int:
        return self.completed + self.remaining + self.failed + self.warning


@dataclass(frozen=True)
class RetrieveResult:
    """How a C-MOVE or C-GET ended."""

    status: int
    counts: SubOperations
    failed_instances: tuple[str, ...] = ()

    @property
    def category(self) -> Category:
        return category(self.status)


@dataclass(frozen=True)
class StoreResult:
    """The C-STORE answer for one file."""

    source: str  # the file's path, or "#n" for bytes
    sop_instance_uid: str
    status: int
    transfer_syntax: str
    detail: str = ""

    @property
    def category(self) -> Category:
        return category(self.status)


Progress = Callable[[SubOperations], None]


def _context(abstract: str, syntaxes: Sequence[str] = UNCOMPRESSED) -> PresentationContext:
    return build_context(abstract, list(syntaxes))


def _status_of(rsp: Dataset, node: DicomNode, what: str) -> int:
    """The status of a response; an empty one means the association ended."""
    if "Status" not in rsp:
        raise ConnectionTimeout(
            f"DICOM node '{node.name}' ended the association during {what} "
            "(aborted, timed out or invalid response)",
            connection=node.name,
        )
    return int(rsp.Status)


def _failure(node: DicomNode, what: str, status: int, rsp: Dataset | None = None) -> DimseFailure:
    comment = str(rsp.get("ErrorComment", "")) if rsp is not None else ""
    return DimseFailure(
        f"DICOM node '{node.name}' answered {what} with {named(status)}"
        + (f" ({comment})" if comment else ""),
        connection=node.name,
    )


@recorded(Operation.ECHO)
def echo(node: DicomNode | Session) -> float:
    """C-ECHO; the seconds the node took to answer (association open excluded when
    the session already had one)."""
    with session(node) as s:
        assoc = s.association("query", _query_contexts())
        started = time.perf_counter()
        rsp = assoc.send_c_echo()
        took = time.perf_counter() - started
        status = _status_of(rsp, s.node, "C-ECHO")
        if category(status) is not Category.SUCCESS:
            raise _failure(s.node, "C-ECHO", status, rsp)
        return took


def _query_contexts() -> list[PresentationContext]:
    return [
        _context(Verification),
        _context(PatientRootQueryRetrieveInformationModelFind),
        _context(StudyRootQueryRetrieveInformationModelFind),
        _context(StudyRootQueryRetrieveInformationModelMove),
    ]


def find(
    node: DicomNode | Session,
    level: Level,
    keys: dict[str, str],
    limit: int = 0,
    *,
    cached: bool = True,
) -> list[dict[str, str]]:
    """C-FIND at ``level`` (Patient Root at PATIENT, Study Root below); answers as
    keyword → value; after ``limit`` answers (0: all) the query is cancelled."""
    target = node.node if isinstance(node, Session) else node
    key = QueryCache.key(f"{target.name}|{target.address}", level, keys, limit)
    if cached and (kept := _cache.get(key)) is not None:
        return kept
    found = _find(node, level, keys, limit)
    _cache.put(key, found, target.query_cache_s)
    return found


@recorded(Operation.FIND)
def _find(
    node: DicomNode | Session, level: Level, keys: dict[str, str], limit: int
) -> list[dict[str, str]]:
    """C-FIND on the node itself (the query cache is :func:`find`'s)."""
    query = identifier(level, keys)
    model = (
        PatientRootQueryRetrieveInformationModelFind
        if level is Level.PATIENT
        else StudyRootQueryRetrieveInformationModelFind
    )
    found: list[dict[str, str]] = []
    with session(node) as s:
        assoc = s.association("query", _query_contexts())
        msg_id = _next_id(assoc)
        cancelled = False
        for rsp, ident in assoc.send_c_find(query, model, msg_id=msg_id):
            status = _status_of(rsp, s.node, "C-FIND")
            kind = category(status)
            if kind is Category.PENDING:
                if cancelled:
                    continue
                if ident is not None:
                    found.append(answer(ident))
                if limit and len(found) >= limit:
                    assoc.send_c_cancel(msg_id, query_model=model)
                    cancelled = True
            elif kind is Category.FAILURE:
                raise _failure(s.node, "C-FIND", status, rsp)
    return found[:limit] if limit else found


def _next_id(assoc: Association) -> int:
    assoc._msg_id = getattr(assoc, "_msg_id", 0) % 65535 + 1  # type: ignore[attr-defined]
    return int(assoc._msg_id)  # type: ignore[attr-defined]


def clear_query_cache() -> None:
    _cache.clear()


def retrieve_identifier(
    study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> Dataset:
    """The C-MOVE / C-GET identifier (Study Root) for a study, series or instance."""
    if sop_uid and not series_uid:
        raise InvalidRequest("an instance is retrieved with its series UID too")
    ds = Dataset()
    ds.QueryRetrieveLevel = (
        Level.IMAGE.value if sop_uid else Level.SERIES.value if series_uid else Level.STUDY.value
    )
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    if sop_uid:
        ds.SOPInstanceUID = sop_uid
    return ds


def sub_operations(rsp: Dataset) -> SubOperations:
    """The sub-operation counts of a C-MOVE / C-GET response (absent counts are 0)."""

    def count(keyword: str) -> int:
        value = rsp.get(keyword)
        return int(value) if value not in (None, "") else 0

    return SubOperations(
        completed=count("NumberOfCompletedSuboperations"),
        remaining=count("NumberOfRemainingSuboperations"),
        failed=count("NumberOfFailedSuboperations"),
        warning=count("NumberOfWarningSuboperations"),
    )


def final_counts(rsp: Dataset, status: int, last: SubOperations) -> SubOperations:
    """The counts of a final response; a node that leaves them out (they are optional
    on success) has completed what was remaining at its last pending response."""
    keywords = ("NumberOfCompletedSuboperations", "NumberOfFailedSuboperations",
                "NumberOfWarningSuboperations")  # fmt: skip
    if any(rsp.get(k) not in (None, "") for k in keywords):
        return sub_operations(rsp)
    if category(status) is Category.SUCCESS:
        return replace(last, completed=last.completed + last.remaining, remaining=0)
    return last


def _failed_instances(ident: Dataset | None) -> tuple[str, ...]:
    if ident is None or "FailedSOPInstanceUIDList" not in ident:
        return ()
    value = ident.FailedSOPInstanceUIDList
    return tuple(str(v) for v in (value if isinstance(value, list | tuple) else [value]) if v)


def _retrieved(responses: Any, node: DicomNode, what: str, progress: Progress) -> RetrieveResult:
    counts = SubOperations()
    for rsp, ident in responses:
        status = _status_of(rsp, node, what)
        if not is_final(status):
            counts = sub_operations(rsp)
            progress(counts)
            continue
        counts = final_counts(rsp, status, counts)
        result = RetrieveResult(status, counts, _failed_instances(ident))
        if result.category is Category.FAILURE:
            raise _failure(node, what, status, rsp)
        progress(counts)
        return result
    raise ConnectionTimeout(
        f"DICOM node '{node.name}' ended {what} without a final response",
        connection=node.name,
    )


def is_final(status: int) -> bool:
    return category(status) is not Category.PENDING


@recorded(Operation.MOVE)
def move(
    node: DicomNode | Session,
    destination_ae: str,
    study_uid: str,
    *,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    progress: Progress = lambda counts: None,
) -> RetrieveResult:
    """C-MOVE of a study, series or instance to ``destination_ae``; ``progress`` gets
    the counts of every pending response and of the final one."""
    query = retrieve_identifier(study_uid, series_uid, sop_uid)
    with session(node) as s:
        assoc = s.association("query", _query_contexts())
        responses = assoc.send_c_move(
            query, destination_ae, StudyRootQueryRetrieveInformationModelMove,
            msg_id=_next_id(assoc),
        )  # fmt: skip
        return _retrieved(responses, s.node, "C-MOVE", progress)


def _get_contexts(node: DicomNode) -> tuple[list[PresentationContext], list[Any]]:
    syntaxes = list(dict.fromkeys([*node.transfer_syntax_uids, *UNCOMPRESSED]))
    contexts = [_context(StudyRootQueryRetrieveInformationModelGet)]
    roles: list[Any] = []
    for sop_class in GET_STORAGE_CLASSES:
        contexts.append(_context(sop_class, syntaxes))
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = UID(sop_class)
        role.scu_role = False
        role.scp_role = True
        roles.append(role)
    return contexts, roles


@recorded(Operation.GET)
def get(
    node: DicomNode | Session,
    into: Callable[[bytes], None],
    study_uid: str,
    *,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    progress: Progress = lambda counts: None,
) -> RetrieveResult:
    """C-GET of a study, series or instance over this association; ``into`` gets each
    received instance as Part 10 bytes (as encoded by the node, not decoded)."""
    query = retrieve_identifier(study_uid, series_uid, sop_uid)
    with session(node) as s:
        contexts, roles = _get_contexts(s.node)
        assoc = s.association(
            "get", contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, _received_by(s))]
        )
        s.received = into
        try:
            responses = assoc.send_c_get(
                query, StudyRootQueryRetrieveInformationModelGet, msg_id=_next_id(assoc)
            )
            return _retrieved(responses, s.node, "C-GET", progress)
        finally:
            s.received = None


def _received_by(s: Session) -> Callable[[evt.Event], int]:
    def on_store(event: evt.Event) -> int:
        if s.received is None:
            return int(Status.OUT_OF_RESOURCES)
        try:
            s.received(bytes(event.encoded_dataset()))
        except OSError:
            return int(Status.OUT_OF_RESOURCES)
        return int(Status.SUCCESS)

    return on_store


@dataclass
class _Outgoing:
    source: str
    dataset: Dataset
    sop_class: str
    transfer_syntax: str
    path: Path | None = field(default=None)


def _outgoing(item: Path | bytes, index: int) -> _Outgoing:
    source = str(item) if isinstance(item, Path) else f"#{index}"
    try:
        ds = dcmread(item if isinstance(item, Path) else BytesIO(item))
        return _Outgoing(source, ds, str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID),
                         item if isinstance(item, Path) else None)  # fmt: skip
    except (InvalidDicomError, OSError, ValueError, AttributeError, EOFError) as error:
        raise InvalidDicom(f"{source}: not a DICOM Part 10 file ({error})") from None


def _store_contexts(node: DicomNode, items: list[_Outgoing]) -> list[PresentationContext]:
    """For each SOP class: the files' own transfer syntaxes, then uncompressed ones as
    the fallback (at most 128 contexts)."""
    by_class: dict[str, list[str]] = {}
    for item in items:
        by_class.setdefault(item.sop_class, [])
        if item.transfer_syntax not in by_class[item.sop_class]:
            by_class[item.sop_class].append(item.transfer_syntax)
    contexts: list[PresentationContext] = []
    for sop_class, syntaxes in by_class.items():
        own = [ts for ts in syntaxes if ts not in UNCOMPRESSED]
        for ts in own:
            contexts.append(_context(sop_class, [ts]))
        contexts.append(_context(sop_class, UNCOMPRESSED))
    if len(contexts) > 128:
        raise InvalidRequest(
            f"{len(by_class)} SOP classes in one store need more than 128 presentation "
            "contexts", hint="Send them in smaller batches."
        )  # fmt: skip
    return contexts


def _accepted(assoc: Association, sop_class: str) -> list[str]:
    return [
        str(c.transfer_syntax[0])
        for c in assoc.accepted_contexts
        if c.abstract_syntax == sop_class and c.transfer_syntax
    ]


def _any_failed(results: list[StoreResult]) -> bool:
    return any(r.category is Category.FAILURE for r in results)


@recorded(Operation.STORE, failed=_any_failed)
def store(node: DicomNode | Session, files: Sequence[Path | bytes]) -> list[StoreResult]:
    """C-STORE each file with its own transfer syntax when the node accepts it, else
    decompressed to explicit VR little endian; one result per file (a failure status is
    reported in its result, not raised)."""
    items = [_outgoing(item, i) for i, item in enumerate(files)]
    results: list[StoreResult] = []
    if not items:
        return results
    with session(node) as s:
        assoc = s.association("store", _store_contexts(s.node, items))
        for item in items:
            results.append(_store_one(assoc, s.node, item))
    return results


def _store_one(assoc: Association, node: DicomNode, item: _Outgoing) -> StoreResult:
    accepted = _accepted(assoc, item.sop_class)
    ds, ts = item.dataset, item.transfer_syntax
    sop_uid = str(ds.SOPInstanceUID)
    if not accepted:
        return StoreResult(item.source, sop_uid, int(Status.SOP_CLASS_NOT_SUPPORTED), ts,
                           "the node accepted no context for the SOP class")  # fmt: skip
    if ts not in accepted:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            try:
                ds.decompress()
            except (RuntimeError, ValueError, NotImplementedError) as error:
                return StoreResult(item.source, sop_uid, int(Status.PROCESSING_FAILURE), ts,
                                   f"cannot decompress: {error}")  # fmt: skip
        ts = str(ds.file_meta.TransferSyntaxUID)
    rsp = assoc.send_c_store(ds, msg_id=_next_id(assoc))
    status = _status_of(rsp, node, "C-STORE")
    return StoreResult(item.source, sop_uid, status, ts, str(rsp.get("ErrorComment", "")))
