"""The DICOM SCP wired: its AE title and address from the settings, the peers from
the stored connections of kind ``dicom``, the inbox archive, the index to search
and the archives to read instances from."""

from __future__ import annotations

import datetime as dt
import logging
import queue
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from pacsync import bootstrap
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.bootstrap.tls import server_context
from pacsync.bootstrap.worklist import answering as worklist
from pacsync.config import Settings
from pacsync.connectors.dicom.inbox import Inbox
from pacsync.connectors.dicom.qr import Instance
from pacsync.connectors.dicom.scp import Peer, Peers, Scp
from pacsync.db.archive_index import ArchiveIndexStore
from pacsync.db.study_events import StudyEvents
from pacsync.domain.clock import utc_now
from pacsync.domain.dicom_node import DicomNode, ae_title
from pacsync.domain.imaging import InstanceHeader
from pacsync.domain.study_workflow import Event
from pacsync.errors import ConfigError, NotFound

log = logging.getLogger("pacsync.dicom.scp")

INBOX = "inbox"
EVENTS_EVERY = 0.2  # seconds of received instances written as one event per study
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
    received = ReceivedEvents(StudyEvents(store.engine))
    return Inbox(INBOX, Path(archive.path), ArchiveIndexStore(store.engine), on_stored=received)


class ReceivedEvents:
    """The inbox's ``received`` study events, written by a thread of their own: the
    C-STORE answer does not wait for them, and the instances of a study told of
    within :data:`EVENTS_EVERY` are added up in one write (which takes the store's
    write lock once instead of once per instance).  The thread starts with the first instance
    (not in a process that only forks the SCP's workers); ``close`` writes what is
    left and ends it."""

    def __init__(self, events: StudyEvents) -> None:
        self.events = events
        self._queue: queue.SimpleQueue[tuple[str, dt.datetime] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, header: InstanceHeader) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._write, name="inbox-events",
                                                daemon=True)  # fmt: skip
                self._thread.start()
        self._queue.put((str(header.study_instance_uid), utc_now()))

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _write(self) -> None:
        while True:
            told = [self._queue.get()]
            closing = told[0] is None
            deadline = time.monotonic() + EVENTS_EVERY
            while not closing and (left := deadline - time.monotonic()) > 0:
                try:
                    told.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
                closing = told[-1] is None
            studies: dict[str, tuple[int, dt.datetime]] = {}
            for item in told:
                if item is not None:
                    count, _ = studies.get(item[0], (0, item[1]))
                    studies[item[0]] = (count + 1, item[1])
            for study_uid, (count, last) in studies.items():
                try:
                    self.events.record(study_uid, Event.RECEIVED, source=INBOX, at=last,
                                       instances=count)  # fmt: skip
                except Exception:  # the instances are stored: only the timeline misses them
                    log.exception("study %s: the received event could not be written", study_uid)
            if closing:
                return


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
        tls=server_context(
            settings.dicom_tls_cert, settings.dicom_tls_key, settings.dicom_tls_ca,
            what="DICOM SCP", env="PACSYNC_DICOM",
        ),
    )  # fmt: skip
