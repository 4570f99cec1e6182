"""Associations from pacsync (the requestor) to a configured :class:`DicomNode`.

Opening one takes the node's calling and called AE titles, timeouts, maximum PDU
size, TLS settings and secondary address; presentation contexts are proposed by
the caller.  Every association socket gets ``TCP_NODELAY`` as soon as it is
connected (pynetdicom leaves Nagle on, which holds back the last PDU of each
DIMSE message for the peer's delayed ACK: 40 ms or more per message).

Foreign failures are translated here: a refused, unreachable or silent peer is a
:class:`ConnectionTimeout` (transient), an A-ASSOCIATE-RJ an
:class:`AssociationRejected` naming its result, source and reason, an
A-ABORT while associating a :class:`ConnectionTimeout`.  When the primary
address cannot be reached, the node's ``secondary`` address is tried.

:class:`Session` keeps associations open across a batch of operations, one per
purpose (the sets of presentation contexts differ between queries, retrieves
and stores), and releases them at its end.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pynetdicom.ae
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

from pacsync.domain.dicom_node import Address, DicomNode
from pacsync.errors import AssociationRejected, ConfigError, ConnectionTimeout

log = logging.getLogger("pacsync.dicom")

# A-ASSOCIATE-RJ fields (PS3.8 9.3.4) in words
_RESULT = {0x01: "rejected permanently", 0x02: "rejected transiently"}
_SOURCE = {0x01: "service user", 0x02: "service provider (ACSE)",
           0x03: "service provider (presentation)"}  # fmt: skip
_REASON = {
    (0x01, 0x01): "no reason given",
    (0x01, 0x02): "application context name not supported",
    (0x01, 0x03): "calling AE title not recognised",
    (0x01, 0x07): "called AE title not recognised",
    (0x02, 0x01): "no reason given",
    (0x02, 0x02): "protocol version not supported",
    (0x03, 0x01): "temporary congestion",
    (0x03, 0x02): "local limit exceeded",
}

Handlers = list[tuple[evt.EventType, Callable[..., Any]]]


class _ClosingSocket(AssociationSocket):
    """pynetdicom's requestor socket, closed even when it never connected (pynetdicom
    3.0 drops a refused socket unclosed: its shutdown() fails first)."""

    def _shutdown_socket(self) -> None:
        sock = self.socket
        super()._shutdown_socket()
        if sock is not None:
            sock.close()


# Requestor sockets only: pynetdicom.ae creates them for outgoing associations.
pynetdicom.ae.AssociationSocket = _ClosingSocket  # type: ignore[attr-defined]


def rejection_text(result: int, source: int, reason: int) -> str:
    """An A-ASSOCIATE-RJ in words: ``rejected permanently by the service user:
    called AE title not recognised``."""
    what = _REASON.get((source, reason), f"reason 0x{reason:02X}")
    return (
        f"{_RESULT.get(result, f'result 0x{result:02X}')} by the "
        f"{_SOURCE.get(source, f'source 0x{source:02X}')}: {what}"
    )


def _nodelay(event: evt.Event) -> None:
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tls_context(node: DicomNode) -> ssl.SSLContext | None:
    """The client TLS context of the node (TLS 1.2 or later), or None without TLS."""
    if node.tls is None:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=node.tls.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = node.tls.verify_hostname
        if node.tls.cert:
            context.load_cert_chain(node.tls.cert, node.tls.key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"connection '{node.name}': TLS files cannot be used: {error}",
            hint="Check the tls.ca, tls.cert and tls.key options (PEM files).",
            connection=node.name,
        ) from None
    return context


def open_association(
    node: DicomNode,
    contexts: Sequence[PresentationContext],
    *,
    ext_neg: Sequence[Any] = (),
    handlers: Handlers | None = None,
    nodelay: bool = True,
) -> Association:
    """An established association with ``node`` (its secondary address when the
    primary cannot be reached)."""
    addresses = [node.address] + ([node.secondary] if node.secondary else [])
    failure: ConnectionTimeout | None = None
    for address in addresses:
        try:
            return _associate(
                node,
                address,
                contexts=contexts,
                ext_neg=ext_neg,
                handlers=handlers or [],
                nodelay=nodelay,
            )
        except ConnectionTimeout as error:
            failure = error
            log.warning("%s", error)
    assert failure is not None
    raise failure


def _associate(
    node: DicomNode,
    address: Address,
    *,
    contexts: Sequence[PresentationContext],
    ext_neg: Sequence[Any],
    handlers: Handlers,
    nodelay: bool,
) -> Association:
    ae = AE(ae_title=node.calling_ae)
    ae.connection_timeout = node.timeouts.connect
    ae.acse_timeout = node.timeouts.acse
    ae.dimse_timeout = node.timeouts.dimse
    ae.network_timeout = node.timeouts.network
    ae.maximum_pdu_size = node.max_pdu
    context = tls_context(node)
    connected: list[bool] = []

    def opened(event: evt.Event) -> None:
        connected.append(True)
        if nodelay:
            _nodelay(event)

    events: list[Any] = [*handlers, (evt.EVT_CONN_OPEN, opened)]
    where = f"{address.ae_title}@{address.host}:{address.port}"
    try:
        assoc = ae.associate(
            address.host,
            address.port,
            contexts=list(contexts),
            ae_title=address.ae_title,
            max_pdu=node.max_pdu,
            ext_neg=list(ext_neg) or None,
            evt_handlers=events,
            tls_args=(context, address.host) if context else None,
        )
    except (OSError, ValueError) as error:
        raise ConnectionTimeout(
            f"DICOM node '{node.name}' ({where}): {error}", connection=node.name
        ) from error
    if assoc.is_established:
        return assoc
    _close(assoc)
    if assoc.is_rejected and assoc.acceptor.primitive is not None:
        p = assoc.acceptor.primitive
        text = rejection_text(int(p.result or 0), int(p.result_source or 0),
                              int(p.diagnostic or 0))  # fmt: skip
        raise AssociationRejected(
            f"DICOM node '{node.name}' ({where}) {text} (our AE {node.calling_ae})",
            connection=node.name,
        )
    if connected and assoc.is_aborted:
        raise ConnectionTimeout(
            f"DICOM node '{node.name}' ({where}) aborted the association request",
            hint="The node may be overloaded or refusing TLS/plain connections; check its logs.",
            connection=node.name,
        )
    raise ConnectionTimeout(
        f"DICOM node '{node.name}' ({where}) cannot be reached within "
        f"{node.timeouts.connect:g} s (refused, unreachable or no answer)",
        connection=node.name,
    )


def _close(assoc: Association) -> None:
    """Close the socket of an association that was not established (pynetdicom leaves
    it open after an abort while associating)."""
    held = assoc.dul.socket
    if held is not None and held.socket is not None:
        held.socket.close()


@dataclass
class Session:
    """Associations with one node kept open across a batch of operations.

    ``session.association(purpose, contexts)`` gives the open association for a
    purpose (``"query"``, ``"get"``, ``"store"``…), opening it on first use or
    when the previous one ended; :meth:`close` releases them all."""

    node: DicomNode
    nodelay: bool = True
    #: where instances received on these associations (C-GET sub-operations) go
    received: Callable[[bytes], None] | None = None
    _open: dict[str, tuple[Association, frozenset[str]]] = field(default_factory=dict)

    def association(
        self,
        purpose: str,
        contexts: Sequence[PresentationContext],
        *,
        ext_neg: Sequence[Any] = (),
        handlers: Handlers | None = None,
    ) -> Association:
        wanted = frozenset(f"{c.abstract_syntax}:{','.join(c.transfer_syntax)}" for c in contexts)
        held = self._open.get(purpose)
        if held is not None:
            assoc, offered = held
            if assoc.is_established and wanted <= offered:
                return assoc
            self._end(purpose)
        assoc = open_association(
            self.node, contexts, ext_neg=ext_neg, handlers=handlers, nodelay=self.nodelay
        )
        self._open[purpose] = (assoc, wanted)
        return assoc

    def discard(self, purpose: str) -> None:
        """Abort the association of ``purpose`` (after a failure left it unusable)."""
        held = self._open.pop(purpose, None)
        if held is not None and held[0].is_established:
            held[0].abort()

    def _end(self, purpose: str) -> None:
        assoc, _ = self._open.pop(purpose)
        if assoc.is_established:
            assoc.release()

    def close(self) -> None:
        for purpose in list(self._open):
            self._end(purpose)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def session(node: DicomNode | Session, *, nodelay: bool = True) -> Iterator[Session]:
    """The given session as it is, or a new one closed at the end of the block."""
    if isinstance(node, Session):
        yield node
        return
    with Session(node, nodelay=nodelay) as opened:
        yield opened
