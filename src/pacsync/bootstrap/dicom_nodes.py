"""DICOM nodes wired: nodes from the stored connections (kind ``dicom``), instances
received by C-GET written to a folder or an archive root, indexed studies read
back as Part 10 files to send, and completed retrievals and sends recorded on the
study's timeline."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.db.study_events import StudyEvents
from pacsync.domain.dicom_node import DicomNode
from pacsync.domain.study_workflow import Event
from pacsync.errors import InvalidDicom, InvalidRequest, NotFound

KIND = "dicom"


def add_node(store: bootstrap.Store, name: str, url: str, options: dict[str, Any]) -> DicomNode:
    """Validate and store a node (create or replace)."""
    node = DicomNode.of(name, url, options)
    store.connections.put(name, KIND, url, options)
    return node


def node(store: bootstrap.Store, name: str) -> DicomNode:
    view = store.connections.get(name)
    if view is None or view.kind != KIND:
        raise NotFound(
            f"no DICOM node '{name}'",
            hint="List them with `pacsync dicom node list`; add one with "
            "`pacsync dicom node add NAME dicom://AE@host:port`.",
        )
    return DicomNode.of(name, store.connections.resolved_url(name), view.options)


def nodes(store: bootstrap.Store) -> list[DicomNode]:
    return [
        DicomNode.of(v.name, v.url, v.options) for v in store.connections.list() if v.kind == KIND
    ]


def folder_writer(folder: Path) -> Callable[[bytes], None]:
    """Writes each received Part 10 instance as it is to
    ``folder/STUDY/SERIES/SOP.dcm`` (atomically: a temp file renamed)."""
    from pydicom import dcmread  # the UIDs only; pydicom costs other commands 0.3 s
    from pydicom.errors import InvalidDicomError

    def write(data: bytes) -> None:
        try:
            ds = dcmread(BytesIO(data), stop_before_pixels=True,
                         specific_tags=["StudyInstanceUID", "SeriesInstanceUID",
                                        "SOPInstanceUID"])  # fmt: skip
            parts = [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                     f"{ds.SOPInstanceUID}.dcm"]  # fmt: skip
        except (InvalidDicomError, ValueError, AttributeError, EOFError) as error:
            raise InvalidDicom(f"a received instance cannot be read: {error}") from None
        if any(not p or "/" in p or p.startswith(".") for p in parts):
            raise InvalidDicom(f"a received instance has unusable UIDs: {parts}")
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".receiving-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    return write


def archive_root(store: bootstrap.Store, name: str) -> Path:
    """The root folder of a ``dicom`` archive, to receive into."""
    archive = store.archives.require(name, counts=False)
    if archive.kind != "dicom":
        raise InvalidRequest(
            f"archive '{name}' is a {archive.kind} archive",
            hint="Receive into an archive of kind dicom (a folder of DICOM files).",
        )
    return Path(archive.path)


def study_files(
    settings: Settings, store: bootstrap.Store, study_uid: str, series_uid: str | None = None
) -> list[bytes]:
    """The indexed instances of a study (or series) as Part 10 bytes (legacy JPEG 2000
    images encapsulated)."""
    from pacsync.bootstrap.dicomweb import DicomWebService

    service = DicomWebService(settings, store)
    unique = {f.header.sop_instance_uid: f for f in service.locate(study_uid, series_uid)}
    return [service.part10(found) for found in unique.values()]


def record_retrieved(
    store: bootstrap.Store,
    node_name: str,
    study_uid: str,
    *,
    how: str,
    completed: int,
    failed: int = 0,
    warning: int = 0,
    into: str | None = None,
) -> None:
    """A ``retrieved`` event when a C-MOVE or C-GET (``how``) brought instances."""
    if completed:
        detail = {"how": how, "failed": failed, "warning": warning, "into": into}
        StudyEvents(store.engine).record(
            study_uid, Event.RETRIEVED, source=node_name, instances=completed, detail=detail
        )


def record_sent(
    store: bootstrap.Store, node_name: str, study_uid: str, *, stored: int, failed: int = 0
) -> None:
    """A ``sent`` event when a C-STORE of the study stored instances on the node."""
    if stored:
        StudyEvents(store.engine).record(
            study_uid, Event.SENT, source=node_name, instances=stored, detail={"failed": failed}
        )
