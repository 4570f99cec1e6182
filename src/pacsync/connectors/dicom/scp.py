"""The pacsync DICOM SCP: Verification, Storage into the inbox, Query/Retrieve
(FIND, MOVE, GET; Patient Root and Study Root) over the archive index, and Modality
Worklist FIND, served by one pynetdicom AE.

Only configured peers may associate: the calling AE title must be one of
:class:`Peers` and the connection must come from that peer's host.  Others are
rejected with A-ASSOCIATE-RJ rejected-permanent, service-user, reason 3 (calling AE
title not recognised); a request for another called AE title with reason 7.

Every accepted connection (and every C-MOVE sub-association) has ``TCP_NODELAY``
set: without it each small DIMSE message waits for Nagle's algorithm (40–90 ms).

What is done with a received dataset lives apart: :mod:`.inbox` (storage) and
:mod:`.qr` (query/retrieve); this module is the protocol machinery and the mapping
of their errors to DIMSE statuses (:class:`~.status.Status`).  Where pynetdicom is
slow on the path of every instance or match, its work is done beside it: threads
woken instead of polling (:mod:`.reactor`), the commonest responses and the file
meta encoded directly (:mod:`.responses`, :mod:`.file_meta`); several processes
accept on one port with :mod:`.listener`."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.association import Association
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsync.connectors.dicom import file_meta, qr, reactor, responses, transport
from pacsync.connectors.dicom.inbox import DatasetMismatch, Inbox
from pacsync.connectors.dicom.listener import SharedServer
from pacsync.connectors.dicom.status import Status
from pacsync.errors import InvalidDicom, PacsyncError, TransientError
from pacsync.imaging.search import IndexSearch

log = logging.getLogger("pacsync.dicom.scp")

# A-ASSOCIATE-RJ (PS3.8 9.3.4): result, source, reason
REJECTED_PERMANENT: Final = 0x01
SERVICE_USER: Final = 0x01
CALLING_AE_NOT_RECOGNISED: Final = 0x03
CALLED_AE_NOT_RECOGNISED: Final = 0x07

QUERY_RETRIEVE: Final = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
)
#: the storage SOP classes pynetdicom knows (those of pydicom's dictionary)
STORAGE_SOP_CLASSES: Final = tuple(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
#: every transfer syntax pydicom knows: a dataset is kept as it was received
STORAGE_TRANSFER_SYNTAXES: Final = tuple(str(uid) for uid in AllTransferSyntaxes)

#: the scheduled procedure steps matching a Modality Worklist identifier
Worklist = Callable[[Dataset], Iterable[Dataset]]


def no_worklist(identifier: Dataset) -> Iterable[Dataset]:
    """No procedures are scheduled: every worklist query answers nothing."""
    return ()


@dataclass(frozen=True, slots=True)
class Peer:
    """A configured DICOM node: it may associate from ``host``; with a ``port`` it is
    also a C-MOVE destination."""

    ae_title: str
    host: str
    port: int | None = None


class Peers:
    """The configured nodes, by AE title (several hosts may share one AE title)."""

    def __init__(self, peers: Iterable[Peer]) -> None:
        self._peers = list(peers)
        self._addresses: dict[str, set[str]] = {}
        for peer in self._peers:
            self._addresses.setdefault(peer.ae_title, set()).update(_addresses_of(peer.host))

    def __iter__(self) -> Iterator[Peer]:
        return iter(self._peers)

    def allowed(self, ae_title: str, address: str) -> bool:
        return address in self._addresses.get(ae_title.strip(), set())

    def destination(self, ae_title: str) -> Peer | None:
        for peer in self._peers:
            if peer.ae_title == ae_title.strip() and peer.port is not None:
                return peer
        return None


def _addresses_of(host: str) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        log.warning("DICOM peer host %s does not resolve; it cannot associate", host)
        return {host}
    found = {str(info[4][0]) for info in infos}
    # an IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket
    return found | {f"::ffff:{a}" for a in found if "." in a}


def nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN: no Nagle delay on the association's socket."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def accepted(event: evt.Event) -> None:
    """EVT_CONN_OPEN of an association we accept: no Nagle delay, no logging handlers
    for a logger that drops their lines, its PDUs read in large pieces
    (:mod:`.transport`), its threads woken when there is work instead of polling
    (:mod:`.reactor`), its pending C-FIND and successful C-STORE responses sent one
    PDU each (:mod:`.responses`)."""
    nodelay(event)
    _quiet_association(event.assoc)
    transport.read_in_large_pieces(event.assoc)
    reactor.wake_on_work(event.assoc)
    responses.send_directly(event.assoc)


class Scp:
    """The SCP ``ae_title`` on ``host``:``port`` (port 0: any free port)."""

    def __init__(
        self,
        ae_title: str,
        *,
        peers: Peers,
        inbox: Inbox,
        search: IndexSearch,
        locate: qr.Locate,
        worklist: Worklist = no_worklist,
        host: str = "127.0.0.1",
        port: int = 11112,
        max_pdu: int = 0,
        listener: socket.socket | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.tls = tls  # associations are accepted over TLS only
        self.peers = peers
        self.inbox = inbox
        self.search = search
        self.locate = locate
        self.worklist = worklist
        self.host = host
        self.port = port
        self.ae = _application_entity(ae_title, max_pdu)
        self.listener = listener  # a socket shared with other processes (:mod:`.listener`)
        self._server: SharedServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- running ------------------------------------------------------------------------------

    def start(self) -> int:
        """Listen in background threads; the port listened on."""
        with self._lock:
            if self._server is None:
                server = self.ae.make_server(
                    (self.host, self.port), evt_handlers=self._handlers(), ssl_context=self.tls,
                    server_class=SharedServer, listener=self.listener,
                )  # fmt: skip
                assert isinstance(server, SharedServer)
                quiet(server)
                self.port = int(server.server_address[1])
                self._thread = threading.Thread(
                    target=server.serve_forever, name=f"DicomScp@{self.port}", daemon=True
                )
                self._thread.start()
                self._server = server
        log.info("DICOM SCP %s listening on %s:%d%s", self.ae_title, self.host, self.port,
                 " (TLS)" if self.tls else "")  # fmt: skip
        return self.port

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server = None
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            self.inbox.close()

    def __enter__(self) -> Scp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handlers(self) -> list[Any]:
        return [
            (evt.EVT_CONN_OPEN, accepted),
            (evt.EVT_REQUESTED, self._requested),
            (evt.EVT_C_ECHO, self._echo),
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_C_FIND, self._find),
            (evt.EVT_C_MOVE, self._move),
            (evt.EVT_C_GET, self._get),
        ]

    # -- association --------------------------------------------------------------------------

    def _requested(self, event: evt.Event) -> None:
        """Reject a called AE title that is not ours, a calling AE title that is not
        configured, or one that calls from another host."""
        assoc = event.assoc
        request = assoc.requestor.primitive
        assert request is not None
        called = str(request.called_ae_title).strip()
        calling = str(request.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        reason = None
        if called != self.ae_title:
            reason = CALLED_AE_NOT_RECOGNISED
        elif not self.peers.allowed(calling, address):
            reason = CALLING_AE_NOT_RECOGNISED
        if reason is not None:
            log.warning(
                "association from %s at %s to %s rejected (reason %d)",
                calling, address, called, reason,
            )  # fmt: skip
            assoc.acse.send_reject(REJECTED_PERMANENT, SERVICE_USER, reason)
            assoc.kill()  # waits until the rejection is sent and the peer has closed

    # -- services -----------------------------------------------------------------------------

    def _echo(self, event: evt.Event) -> int:
        return Status.SUCCESS

    def _store(self, event: evt.Event) -> Dataset | int:
        request: Any = event.request
        sop_uid = str(request.AffectedSOPInstanceUID)
        sop_class = str(request.AffectedSOPClassUID)
        try:
            data = file_meta.part10(request.DataSet.getvalue(), sop_class, sop_uid,
                                    str(event.context.transfer_syntax))  # fmt: skip
            received = self.inbox.receive(data, sop_uid, sop_class)
        except DatasetMismatch as error:
            return _failure(Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, sop_uid, error)
        except InvalidDicom as error:
            return _failure(Status.UNABLE_TO_PROCESS, sop_uid, error)
        except OSError as error:
            return _failure(Status.OUT_OF_RESOURCES, sop_uid, error)
        except TransientError as error:
            return _failure(Status.OUT_OF_RESOURCES, sop_uid, error)
        except PacsyncError as error:
            return _failure(Status.PROCESSING_FAILURE, sop_uid, error)
        except Exception as error:
            log.exception("C-STORE of %s failed", sop_uid)
            return _failure(Status.PROCESSING_FAILURE, sop_uid, error)
        log.debug("C-STORE %s: %s %s", sop_uid, received.outcome, received.path)
        return Status.SUCCESS

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        if str(event.request.AffectedSOPClassUID) == ModalityWorklistInformationFind:
            return qr.worklist_find(event, self.worklist)
        return qr.find(event, self.search, retrieve_ae=self.ae_title)

    def _move(self, event: evt.Event) -> Iterator[Any]:
        return qr.move(event, self.search, self.locate, self.peers.destination,
                       [(evt.EVT_CONN_OPEN, nodelay)])  # fmt: skip

    def _get(self, event: evt.Event) -> Iterator[Any]:
        return qr.get(event, self.search, self.locate)


def _status(status: Status, comment: str | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = int(status)
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


def _failure(status: Status, sop_uid: str, error: BaseException) -> Dataset:
    reason = str(getattr(error, "message", None) or getattr(error, "strerror", None) or error)
    log.warning("C-STORE of %s refused (%s): %s", sop_uid, status.name, reason)
    return _status(status, reason)


def quiet(server: SharedServer) -> None:
    """pynetdicom's request and response identifiers of C-FIND (module settings of
    pynetdicom's) pretty-printed only for a logger that would write them."""
    logs = logging.getLogger("pynetdicom").isEnabledFor(logging.INFO)
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = logs
    pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = logs


def _quiet_association(assoc: Association) -> None:
    """No logging handlers of pynetdicom's on ``assoc`` (it binds them to each one)
    when its logger would drop what they write: they describe every PDU and DIMSE
    message."""
    if logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        return
    for event, handler in (
        (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
        (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
        (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
        (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
    ):
        assoc.unbind(event, handler)


def _application_entity(ae_title: str, max_pdu: int) -> AE:
    ae = AE(ae_title=ae_title)
    ae.maximum_pdu_size = max_pdu
    ae.maximum_associations = 32
    ae.add_supported_context(Verification)
    for uid in STORAGE_SOP_CLASSES:
        # scu_role/scp_role: a C-GET requestor may take the storage SCP role
        ae.add_supported_context(uid, list(STORAGE_TRANSFER_SYNTAXES), scu_role=True,
                                 scp_role=True)  # fmt: skip
    for uid in (*QUERY_RETRIEVE, ModalityWorklistInformationFind):
        ae.add_supported_context(uid)
    return ae
