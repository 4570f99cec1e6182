"""The DICOM SCP wired: its AE title and address from the settings, the peers from
the stored connections of kind ``dicom``, the inbox archive, the index to search
and the archives to read instances from."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from pacsync import bootstrap
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.bootstrap.worklist import answering as worklist
from pacsync.config import Settings
from pacsync.connectors.dicom.inbox import Inbox
from pacsync.connectors.dicom.qr import Instance
from pacsync.connectors.dicom.scp import Peer, Peers, Scp
from pacsync.db.archive_index import ArchiveIndexStore
from pacsync.db.study_events import StudyEvents
from pacsync.domain.dicom_node import DicomNode, ae_title
from pacsync.domain.imaging import InstanceHeader
from pacsync.domain.study_workflow import Event
from pacsync.errors import ConfigError, NotFound

log = logging.getLogger("pacsync.dicom.scp")

INBOX = "inbox"
CONNECTION_KIND = "dicom"


def peers(store: bootstrap.Store) -> Peers:
    """Each stored DICOM node may associate from its host and is a C-MOVE destination."""
    found: list[Peer] = []
    for connection in store.connections.list():
        if connection.kind != CONNECTION_KIND:
            continue
        try:
            node = DicomNode.of(connection.name, connection.url, connection.options)
        except ConfigError as error:
            log.warning("DICOM connection %s is skipped: %s", connection.name, error.message)
            continue
        address = node.address
        found.append(Peer(address.ae_title, address.host, address.port))
    return Peers(found)


def inbox(settings: Settings, store: bootstrap.Store) -> Inbox:
    """The inbox archive (``inbox``, a dicom archive under the pacsync home), added
    when it does not exist yet."""
    archive = store.archives.get(INBOX, counts=False)
    if archive is None:
        root = (settings.home / INBOX).resolve()
        root.mkdir(parents=True, exist_ok=True)
        archive = store.archives.add(INBOX, "dicom", str(root), rescan_minutes=0)
    elif archive.kind != "dicom":
        raise ConfigError(
            f"archive '{INBOX}' is a {archive.kind} archive, not the DICOM inbox",
            hint=f"Rename or remove it: pacsync archive remove {INBOX}",
        )
    events = StudyEvents(store.engine)

    def received(header: InstanceHeader) -> None:
        events.record(str(header.study_instance_uid), Event.RECEIVED, source=INBOX)

    return Inbox(INBOX, Path(archive.path), ArchiveIndexStore(store.engine), on_stored=received)


class ArchiveReader:
    """Instances found through the index, read as Part 10 from their archive."""

    def __init__(self, service: DicomWebService) -> None:
        self.service = service

    def __call__(
        self, study_uid: str | None, series_uid: str | None, sop_uid: str | None
    ) -> Sequence[Instance]:
        try:
            found = self.service.locate(study_uid, series_uid, sop_uid)
        except NotFound:
            return []
        return [self._instance(located) for located in found]

    def _instance(self, located: Located) -> Instance:
        header = located.header
        if located.kind == "dicom":
            syntax = header.transfer_syntax_uid or ExplicitVRLittleEndian
        else:
            syntax = JPEG2000Lossless  # a legacy image is sent encapsulated
        return Instance(
            sop_class_uid=header.sop_class_uid or "",
            sop_instance_uid=header.sop_instance_uid,
            transfer_syntax_uid=syntax,
            load=lambda: self.service.part10(located),
        )


def scp(
    settings: Settings,
    store: bootstrap.Store,
    *,
    ae: str | None = None,
    host: str | None = None,
    port: int | None = None,
    listener: socket.socket | None = None,
) -> Scp:
    """The SCP of the settings (``ae``, ``host`` and ``port`` override them); with a
    ``listener``, accepting from that socket shared with other processes."""
    title = ae_title(ae or settings.dicom_ae, "SCP AE title")
    return Scp(
        title,
        peers=peers(store),
        inbox=inbox(settings, store),
        search=store.archive_search,
        locate=ArchiveReader(DicomWebService(settings, store)),
        worklist=worklist(store),
        host=host or settings.dicom_host,
        port=settings.dicom_port if port is None else port,
        listener=listener,
    )
