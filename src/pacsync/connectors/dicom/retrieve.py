"""pacsync retrieving from a DICOM node: C-MOVE to a destination AE and C-GET over
the association, with the sub-operation counts of every pending response.

Given a node, a retrieve the node aborts or stops answering is started again under
the node's retry policy (:mod:`.retry`): ``progress`` then counts from zero again
and instances already received may arrive twice (a C-GET's ``into`` must accept
that; writing by SOP Instance UID does)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import evt
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacsync.connectors.dicom.association import Session, session
from pacsync.connectors.dicom.dimse import (
    UNCOMPRESSED,
    context,
    failure,
    next_id,
    query_contexts,
    status_of,
)
from pacsync.connectors.dicom.metrics import Operation, recorded
from pacsync.connectors.dicom.query import Level
from pacsync.connectors.dicom.retry import retried
from pacsync.connectors.dicom.status import Category, Status, category
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConnectionTimeout, InvalidRequest

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


Progress = Callable[[SubOperations], None]


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
        status = status_of(rsp, node, what)
        if not is_final(status):
            counts = sub_operations(rsp)
            progress(counts)
            continue
        counts = final_counts(rsp, status, counts)
        result = RetrieveResult(status, counts, _failed_instances(ident))
        if result.category is Category.FAILURE:
            raise failure(node, what, status, rsp)
        progress(counts)
        return result
    raise ConnectionTimeout(
        f"DICOM node '{node.name}' ended {what} without a final response",
        connection=node.name,
    )


def is_final(status: int) -> bool:
    return category(status) is not Category.PENDING


@retried("C-MOVE")
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
        assoc = s.association("query", query_contexts())
        responses = assoc.send_c_move(
            query, destination_ae, StudyRootQueryRetrieveInformationModelMove,
            msg_id=next_id(assoc),
        )  # fmt: skip
        return _retrieved(responses, s.node, "C-MOVE", progress)


def _get_contexts(node: DicomNode) -> tuple[list[PresentationContext], list[Any]]:
    syntaxes = list(dict.fromkeys([*node.transfer_syntax_uids, *UNCOMPRESSED]))
    contexts = [context(StudyRootQueryRetrieveInformationModelGet)]
    roles: list[Any] = []
    for sop_class in GET_STORAGE_CLASSES:
        contexts.append(context(sop_class, syntaxes))
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = UID(sop_class)
        role.scu_role = False
        role.scp_role = True
        roles.append(role)
    return contexts, roles


@retried("C-GET")
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
                query, StudyRootQueryRetrieveInformationModelGet, msg_id=next_id(assoc)
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
