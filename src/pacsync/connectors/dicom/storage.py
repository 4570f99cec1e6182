"""pacsync sending to a DICOM node: C-STORE of Part 10 files in their own transfer
syntax when the node accepts it, decompressed otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from pacsync.connectors.dicom.association import Session, session
from pacsync.connectors.dicom.dimse import (
    UNCOMPRESSED,
    context,
    next_id,
    status_of,
)
from pacsync.connectors.dicom.metrics import Operation, recorded
from pacsync.connectors.dicom.retry import retried
from pacsync.connectors.dicom.status import Category, Status, category
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import InvalidDicom, InvalidRequest


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
            contexts.append(context(sop_class, [ts]))
        contexts.append(context(sop_class, UNCOMPRESSED))
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


@retried("C-STORE")
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
    rsp = assoc.send_c_store(ds, msg_id=next_id(assoc))
    status = status_of(rsp, node, "C-STORE")
    return StoreResult(item.source, sop_uid, status, ts, str(rsp.get("ErrorComment", "")))
