"""The MLLP listener: many connections, each answered in order, on one asyncio loop.

Each connection is an :class:`asyncio.Protocol`: whatever arrives is framed
(:mod:`.mllp`) in the read callback, each complete message decided from its MSH,
and those of one read queued together for the next commit (shared with whatever
other connections sent meanwhile); the answers are written, in order, as their
commits complete.  No task or timer is made per read: at thousands of messages
a second the event loop's own bookkeeping would cost more than the messages.

A connection silent for ``idle_timeout_s``, still sending one message that long
after it began (a trickle that is never quite silent), or not reading its
answers that long (so they cannot be written), is closed; one sending a block
larger than ``max_message_bytes`` gets AR for it and goes on.  A peer that sends
faster than its messages are kept is paused until its backlog is answered.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

from pacsync.connectors.hl7.intake import Decision, Intake
from pacsync.connectors.hl7.mllp import Dropped, Framer, frame
from pacsync.domain.messaging import Kept

log = logging.getLogger("pacsync.hl7.listener")

# what one connection may have waiting for its commits before it is read no more
BACKLOG = 1000  # messages
BACKLOG_BYTES = 32 * 2**20


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    host: str = "127.0.0.1"
    port: int = 2575
    max_message_bytes: int = 10 * 2**20
    idle_timeout_s: float = 300.0
    max_connections: int = 500
    tls: ssl.SSLContext | None = None


class MllpListener:
    """Serves one feed's intake on a TCP (or TLS) port."""

    def __init__(self, intake: Intake, options: ListenerOptions) -> None:
        self.intake = intake
        self.options = options
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def port(self) -> int:
        """The port listened on (the one chosen when the options said 0)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            self.options.host,
            self.options.port,
            ssl=self.options.tls,
            reuse_address=True,
        )

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):  # idle ones would wait for the timeout
                connection.close()
            await self._server.wait_closed()

    def _admit(self, connection: _Connection) -> bool:
        if len(self._connections) >= self.options.max_connections:
            log.warning("%s: connection from %s refused: too many",
                        self.intake.feed, connection.peer)  # fmt: skip
            return False
        self._connections.add(connection)
        return True

    def _left(self, connection: _Connection) -> None:
        self._connections.discard(connection)


class _Connection(asyncio.Protocol):
    """One peer: its framer, its messages waiting for their commit, its timeouts."""

    def __init__(self, listener: MllpListener) -> None:
        self.listener = listener
        self.intake = listener.intake
        self.idle = listener.options.idle_timeout_s
        self.framer = Framer(listener.options.max_message_bytes)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.admitted = False
        self.heard = self.loop.time()  # the last byte read or answer written
        self.began: float | None = None  # when the message arriving now began
        self.blocked: float | None = None  # since when answers wait for the peer to read
        self.waiting: deque[_Batch] = deque()  # read, not yet answered, in order
        self.backlog = 0
        self.backlog_bytes = 0
        self.paused = False
        self.ended = False  # the peer sent its end of stream
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.peer = _peer(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.admitted = self.listener._admit(self)
        if not self.admitted:
            transport.close()
            return
        self.timer = self.loop.call_at(self.heard + self.idle, self._check)

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        arrived = time.perf_counter()
        now = self.loop.time()
        payloads, dropped = self.framer.feed(data)
        if payloads or self.framer.inside or not dropped:  # bytes outside blocks are no sign
            self.heard = now
        if not self.framer.inside:
            self.began = None
        elif self.began is None or payloads or dropped:  # a new message began
            self.began = now
        decisions = self._decisions(payloads, dropped)
        if not decisions:
            return
        kept = self.intake.submit(decisions)
        self.waiting.append(_Batch(decisions, kept, arrived, len(data)))
        self.backlog += len(decisions)
        self.backlog_bytes += len(data)
        kept.add_done_callback(self._kept)
        self._pace()

    def eof_received(self) -> bool:
        self.ended = True
        self.began = None  # a message begun will never end: not a trickle to time out
        if self.framer.inside:
            log.warning("%s: %s closed in the middle of a message (%d bytes dropped)",
                        self.intake.feed, self.peer, self.framer.pending)  # fmt: skip
        # kept open (half) until what it sent is answered; TLS cannot be half open, and
        # what it sent is kept all the same (sent again, it is answered as a duplicate)
        tls = self.transport is not None and self.transport.get_extra_info("sslcontext")
        return bool(self.waiting) and not tls

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if exc is not None:
            log.info("%s: connection from %s ended: %s", self.intake.feed, self.peer, exc)
        if self.admitted:
            self.listener._left(self)

    def pause_writing(self) -> None:
        self.blocked = self.loop.time()
        self._pace()

    def resume_writing(self) -> None:
        self.blocked = None
        self._pace()

    # -- answering --------------------------------------------------------------------------

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _kept(self, _future: asyncio.Future[list[Kept]]) -> None:
        """Write the answers of every batch whose commit is done, in the order read."""
        assert self.transport is not None
        while self.waiting and self.waiting[0].kept.done():
            batch = self.waiting.popleft()
            self.backlog -= len(batch.decisions)
            self.backlog_bytes -= batch.size
            answers = self.intake.answers(batch.decisions, batch.kept)
            if self.transport.is_closing():
                continue  # kept all the same: the peer sends again and it is a duplicate
            out = b"".join(frame(a) for a in answers if a is not None)
            if out:
                self.transport.write(out)
            took = time.perf_counter() - batch.arrived
            for _ in batch.decisions:
                self.intake.metrics.latency(self.intake.feed, took)
        self.heard = self.loop.time()
        if self.ended and not self.waiting:
            self.transport.close()
        self._pace()

    def _pace(self) -> None:
        """Read from the peer only while its answers go out and its backlog is small."""
        if self.transport is None or self.transport.is_closing():
            return
        hold = (
            self.blocked is not None
            or self.backlog >= BACKLOG
            or self.backlog_bytes >= BACKLOG_BYTES
        )
        if hold and not self.paused:
            self.transport.pause_reading()
        elif self.paused and not hold:
            self.transport.resume_reading()
        self.paused = hold

    def _check(self) -> None:
        """The connection's one timer: close it when the peer kept it waiting too long."""
        assert self.transport is not None
        now = self.loop.time()
        if self.transport.is_closing():  # closed, yet its answers never went out: let go
            self.transport.abort()
            return
        if self.blocked is not None:
            since, why = self.blocked, "read no answer"
        elif self.began is not None:
            since, why = self.began, "still sending one message"
        elif self.waiting:  # waiting for our commit, not for the peer
            since, why = now, ""
        else:
            since, why = self.heard, "silent"
        if now - since < self.idle:
            self.timer = self.loop.call_at(since + self.idle, self._check)
            return
        if self.blocked is not None or self.transport.get_write_buffer_size():
            log.warning("%s: %s %s for %.0f s: closed (what it sent is kept)",
                        self.intake.feed, self.peer, why, self.idle)  # fmt: skip
            self.transport.abort()  # answers it does not read would hold it open
            return
        log.info("%s: %s %s for %.0f s: closed", self.intake.feed, self.peer, why, self.idle)
        self.transport.close()
        self.timer = self.loop.call_at(now + self.idle, self._check)  # if it never finishes

    def _decisions(self, payloads: list[bytes], dropped: list[Dropped]) -> list[Decision]:
        """Each payload and each answered drop, in the order they arrived."""
        decisions: list[Decision] = []
        events = iter(dropped)
        event = next(events, None)
        for index, payload in enumerate([*payloads, None]):
            while event is not None and event.position <= index:
                decision = self.intake.dropped(event, self.peer)
                if decision is not None:
                    decisions.append(decision)
                event = next(events, None)
            if payload is not None:
                decisions.append(self.intake.decide(payload, self.peer))
        return decisions


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one read completed, waiting for its commit."""

    decisions: list[Decision]
    kept: asyncio.Future[list[Kept]]
    arrived: float
    size: int  # bytes read


def _peer(transport: asyncio.BaseTransport) -> str:
    address = transport.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


__all__ = ["ListenerOptions", "MllpListener"]
