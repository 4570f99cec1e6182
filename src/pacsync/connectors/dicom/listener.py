"""One DICOM port served by several processes.

The threads of a Python process share one interpreter lock, so the associations of
one process take turns on one core; they run in parallel only in several processes.
:func:`listening_socket` binds the port once, before the worker processes start, and
each worker accepts from that socket with its own pynetdicom AE through a
:class:`SharedServer`.

Every worker waiting on the socket is woken by a new connection and one accept wins
(the socket does not block: the others find nothing and go back to waiting).  A
worker that is already serving associations waits :data:`BUSY_DELAY` for each of
them before it accepts, so an idle worker takes the connection: two senders that
arrive together are served by two processes.  (Listeners bound with SO_REUSEPORT
would spread connections by a hash of their addresses instead, and would often put
two senders on one process.)

A :class:`SharedServer` without a listening socket binds its own, as pynetdicom's
server does: one process serving alone.
"""

from __future__ import annotations

import socket
import socketserver
import time
from typing import Any, Final

from pynetdicom.transport import AddressInformation, ThreadedAssociationServer

#: how long a worker lets an idle one take a connection, per association it serves
BUSY_DELAY: Final = 0.003
BACKLOG: Final = 64


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
        super().__init__(*args, **kwargs)

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
        if self._listener is not None:
            busy = len(self.active_associations)
            if busy:
                time.sleep(BUSY_DELAY * busy)
        return super().get_request()  # BlockingIOError: another worker took it

    def shutdown(self) -> None:
        """Stop serving and close the socket (this process's copy of a shared one)."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()
