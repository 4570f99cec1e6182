"""What every DIMSE operation pacsync performs as a service class user shares:
presentation contexts, message IDs, and reading a response's status."""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsync.connectors.dicom.status import named
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConnectionTimeout, DimseFailure

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def context(abstract: str, syntaxes: Sequence[str] = UNCOMPRESSED) -> PresentationContext:
    return build_context(abstract, list(syntaxes))


def status_of(rsp: Dataset, node: DicomNode, what: str) -> int:
    """The status of a response; an empty one means the association ended."""
    if "Status" not in rsp:
        raise ConnectionTimeout(
            f"DICOM node '{node.name}' ended the association during {what} "
            "(aborted, timed out or invalid response)",
            connection=node.name,
        )
    return int(rsp.Status)


def failure(node: DicomNode, what: str, status: int, rsp: Dataset | None = None) -> DimseFailure:
    comment = str(rsp.get("ErrorComment", "")) if rsp is not None else ""
    return DimseFailure(
        f"DICOM node '{node.name}' answered {what} with {named(status)}"
        + (f" ({comment})" if comment else ""),
        connection=node.name,
    )


def query_contexts() -> list[PresentationContext]:
    return [
        context(Verification),
        context(PatientRootQueryRetrieveInformationModelFind),
        context(StudyRootQueryRetrieveInformationModelFind),
        context(StudyRootQueryRetrieveInformationModelMove),
    ]


def next_id(assoc: Association) -> int:
    assoc._msg_id = getattr(assoc, "_msg_id", 0) % 65535 + 1  # type: ignore[attr-defined]
    return int(assoc._msg_id)  # type: ignore[attr-defined]
