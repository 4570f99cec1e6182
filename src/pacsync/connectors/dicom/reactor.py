"""pynetdicom's acceptor threads woken when there is work instead of polling for it.

pynetdicom runs two threads per association and both poll: the DUL reactor sleeps
1 ms whenever a turn found nothing to read or send, the association reactor sleeps
1 ms before each look for a complete DIMSE message.  A C-STORE waits on average
half a millisecond to be handled and another half for its response to be sent, and
the next request as long to be read: about 1.5 ms of each instance, a quarter of
what storing it costs.

:func:`wake_on_work` makes those sleeps of one association end as soon as there is
something to do: the DUL reactor's when its socket becomes readable or a primitive
is queued for it to send, the association reactor's when a DIMSE message is
complete or the DUL passes up a primitive (a release or abort request).  As they
wake on work, their idle turns come every :data:`IDLE_WAIT` instead of every
millisecond (what they check then without being woken: kill flags, timers); every
other sleep lasts at most what pynetdicom asked for.  Threads of other
associations sleep as before.  It is called on EVT_CONN_OPEN, before the
association's threads start."""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

import pynetdicom.association
import pynetdicom.dul
from pynetdicom.association import Association

#: pynetdicom's idle turn of both reactors, and how long a woken reactor waits instead
REACTOR_TICK: Final = 0.001
IDLE_WAIT: Final = 0.01

_Wait = Callable[[float], None]
_waits: weakref.WeakKeyDictionary[threading.Thread, _Wait] = weakref.WeakKeyDictionary()


class _Clock:
    """The ``time`` module as pynetdicom's reactors use it, with a ``sleep`` that ends
    early for a thread told of work."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        wait = _waits.get(threading.current_thread())
        if wait is None:
            time.sleep(seconds)
        else:
            wait(seconds)


pynetdicom.dul.time = _Clock()  # type: ignore[attr-defined,assignment]
pynetdicom.association.time = _Clock()  # type: ignore[attr-defined,assignment]


class _WakingQueue(queue.Queue[Any]):
    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class _DulWait:
    """The DUL reactor's sleep: a wait on its socket and on one end of a socket pair,
    written to when a primitive is queued while the reactor waits."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.queue = _WakingQueue(self.poke)
        self.waiting = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def poke(self) -> None:
        if self.waiting:  # else the reactor finds the primitive before it waits again
            with contextlib.suppress(OSError):  # full (it wakes anyway) or closed
                self._writer.send(b"\0")

    def __call__(self, seconds: float) -> None:
        self.waiting = True  # before looking at the queue: a put after the look pokes
        try:
            if self.queue.empty():
                ready, _, _ = select.select([self.sock, self._reader], [], [], seconds)
                if self._reader in ready:
                    self._reader.recv(4096)
        except (OSError, ValueError):  # the socket closed under us: plain sleep
            time.sleep(seconds)
        finally:
            self.waiting = False

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def wake_on_work(assoc: Association) -> None:
    """Wake ``assoc``'s reactors on work (before its threads start)."""
    dul = assoc.dul
    sock = dul.socket.socket if dul.socket is not None else None
    if sock is None:
        return
    dul_wait = _DulWait(sock)
    weakref.finalize(dul, dul_wait.close)
    dul.to_provider_queue = dul_wait.queue
    dul._run_loop_delay = IDLE_WAIT  # the DUL's idle sleep, pynetdicom's own setting
    _waits[dul] = dul_wait
    # the association reactor: an event set by a complete message or a primitive
    work = threading.Event()

    def assoc_wait(seconds: float) -> None:
        work.wait(IDLE_WAIT if seconds == REACTOR_TICK else seconds)
        work.clear()

    assoc.dimse.msg_queue = _WakingQueue(work.set)
    dul.to_user_queue = _WakingQueue(work.set)
    _waits[assoc] = assoc_wait
