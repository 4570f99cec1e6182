"""One DICOM port served by several processes.

The threads of a Python process share one interpreter lock, so the associations of
one process take turns on one core; they run in parallel only in several processes.
:func:`listening_socket` binds the port once, before the worker processes start, and
each worker accepts from that socket with its own pynetdicom AE through a
:class:`SharedServer`.

Every worker waiting on the socket is woken by a new connection and one accept wins
(the socket does not block: the others find nothing and go back to waiting).  A
worker with connections open (associations being served, or negotiated) waits
:data:`BUSY_DELAY` for each of them before it accepts, so an idle worker takes the
connection: two senders that connect at the same moment are served by two
processes.  Connections are counted from accept to close, not by association
threads: the thread of a connection closed without an association request (a port
probe) lives on until its ACSE timeout.  (Listeners bound with SO_REUSEPORT
would spread connections by a hash of their addresses instead, and would often put
two senders on one process.)

A :class:`SharedServer` without a listening socket binds its own, as pynetdicom's
server does: one process serving alone.  Given an SSL context it speaks TLS only:
each connection's handshake runs in that connection's thread, with a timeout, so a
silent or plain-TCP peer cannot hold the port.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from typing import Any, Final

from pynetdicom import evt
from pynetdicom.transport import AddressInformation, ThreadedAssociationServer

log = logging.getLogger("pacsync.dicom.scp")

#: how long a worker lets an idle one take a connection, per connection it has open
#: (long enough for an idle worker to be scheduled on a loaded machine; a new
#: association waits that long only when every worker is busy)
BUSY_DELAY: Final = 0.05
BACKLOG: Final = 64
HANDSHAKE_TIMEOUT: Final = 10.0  # seconds for a peer to complete its TLS handshake
# (in the connection's own thread: a silent or plain-TCP peer holds only itself)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: a free port) that does not block on
    accept, to be shared by worker processes."""
    family = AddressInformation.from_tuple((host, port)).address_family
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class SharedServer(ThreadedAssociationServer):
    """pynetdicom's threaded server, accepting from ``listener`` when one is given.

    Built by ``AE.make_server(address, server_class=SharedServer, listener=...)``;
    ``serve_forever`` in a thread of the caller's own."""

    def __init__(self, *args: Any, listener: socket.socket | None = None, **kwargs: Any) -> None:
        self._listener = listener
        self._open = 0  # connections accepted and not closed yet
        self._lock = threading.Lock()
        super().__init__(*args, **kwargs)
        self.bind(evt.EVT_CONN_CLOSE, self._closed)

    def server_bind(self) -> None:
        if self._listener is None:
            super().server_bind()
            return
        if self.socket is not None:
            self.socket.close()  # the one socketserver made: the shared one is used instead
        self.socket = self._listener
        self.server_address = self._listener.getsockname()

    def server_activate(self) -> None:
        if self._listener is None:
            super().server_activate()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if self._listener is not None and self._open:
            time.sleep(BUSY_DELAY * self._open)
        assert self.socket is not None
        accepted = self.socket.accept()  # BlockingIOError: another worker took it
        with self._lock:
            self._open += 1
        return accepted  # over TLS: its handshake is in the connection's own thread

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            if self.ssl_context is not None:
                request = self._handshake(request, client_address)
                if request is None:
                    self._closed(None)
                    return
            super().finish_request(request, client_address)  # starts the association
        except BaseException:
            self._closed(None)
            raise

    def _handshake(self, sock: socket.socket, peer: Any) -> socket.socket | None:
        """The TLS handshake within :data:`HANDSHAKE_TIMEOUT`; None when it failed (the
        connection is closed: a plain client, an untrusted certificate, silence)."""
        assert self.ssl_context is not None
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            secure = self.ssl_context.wrap_socket(sock, server_side=True)
        except OSError as exc:  # ssl.SSLError and the timeout too
            log.info("TLS handshake with %s failed: %s", peer, exc)
            sock.close()
            return None
        secure.settimeout(None)
        return secure

    def _closed(self, event: evt.Event | None) -> None:
        with self._lock:
            self._open -= 1

    def shutdown(self) -> None:
        """Stop serving and close the socket (this process's copy of a shared one)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()
