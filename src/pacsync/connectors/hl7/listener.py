"""The MLLP listener: many connections, each answered in order, on one asyncio loop.

Each connection reads whatever arrives, frames it (:mod:`.mllp`), decides each
complete message from its MSH and keeps those of one read together (one commit
with whatever other connections sent meanwhile), then writes the answers in
order.  A connection silent for ``idle_timeout_s``, still sending one message
that long after it began (a trickle that is never quite silent), or not reading
its answers that long (so they cannot be written), is closed; one
sending a block larger than ``max_message_bytes`` gets AR for it and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from dataclasses import dataclass

from pacsync.connectors.hl7.intake import Decision, Intake
from pacsync.connectors.hl7.mllp import Dropped, Framer, frame

log = logging.getLogger("pacsync.hl7.listener")

READ_SIZE = 256 * 1024


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
        self._connections = 0
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The port listened on (the one chosen when the options said 0)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve,
            self.options.host,
            self.options.port,
            ssl=self.options.tls,
            reuse_address=True,
            limit=READ_SIZE,
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
            for writer in list(self._writers):  # idle clients would hold them until their timeout
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._connections >= self.options.max_connections:
            log.warning("%s: connection from %s refused: too many", self.intake.feed, peer)
            writer.close()
            return
        self._connections += 1
        self._writers.add(writer)
        framer = Framer(self.options.max_message_bytes)
        idle = self.options.idle_timeout_s
        loop = asyncio.get_running_loop()
        deadline: float | None = None  # a message begun must be complete by then
        try:
            while True:
                wait = idle if deadline is None else deadline - loop.time()
                try:
                    if wait <= 0:
                        raise TimeoutError
                    data = await asyncio.wait_for(reader.read(READ_SIZE), wait)
                except TimeoutError:
                    why = "silent" if deadline is None else "still sending one message"
                    log.info("%s: %s %s for %.0f s: closed", self.intake.feed, peer, why, idle)
                    break
                if not data:
                    break
                arrived = time.perf_counter()
                payloads, dropped = framer.feed(data)
                if not framer.inside:
                    deadline = None
                elif deadline is None or payloads or dropped:  # a new message began
                    deadline = loop.time() + idle
                await self._answer(writer, self._decisions(payloads, dropped, peer), arrived)
            if framer.inside:
                log.warning("%s: %s closed in the middle of a message (%d bytes dropped)",
                            self.intake.feed, peer, framer.pending)  # fmt: skip
        except (ConnectionError, ssl.SSLError) as error:
            log.info("%s: connection from %s ended: %s", self.intake.feed, peer, error)
        except _NotReading:
            log.warning("%s: %s read no answer for %.0f s: closed (what it sent is kept)",
                        self.intake.feed, peer, idle)  # fmt: skip
            writer.transport.abort()  # what waits to be written would hold it open
        finally:
            self._connections -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    async def _answer(
        self, writer: asyncio.StreamWriter, decisions: list[Decision], arrived: float
    ) -> None:
        """Keep what one read completed, then write the answers in order."""
        if not decisions:
            return
        answers = await self.intake.receive(decisions)
        out = b"".join(frame(a) for a in answers if a is not None)
        if out:
            writer.write(out)
            if writer.transport.get_write_buffer_size():  # not all sent at once: wait for it,
                try:  # but a peer that never reads its answers must not hold the socket
                    await asyncio.wait_for(writer.drain(), self.options.idle_timeout_s)
                except TimeoutError:
                    raise _NotReading from None
        took = time.perf_counter() - arrived
        for _ in decisions:
            self.intake.metrics.latency(self.intake.feed, took)

    def _decisions(
        self, payloads: list[bytes], dropped: list[Dropped], peer: str
    ) -> list[Decision]:
        """Each payload and each answered drop, in the order they arrived."""
        decisions: list[Decision] = []
        events = iter(dropped)
        event = next(events, None)
        for index, payload in enumerate([*payloads, None]):
            while event is not None and event.position <= index:
                decision = self.intake.dropped(event, peer)
                if decision is not None:
                    decisions.append(decision)
                event = next(events, None)
            if payload is not None:
                decisions.append(self.intake.decide(payload, peer))
        return decisions


class _NotReading(Exception):
    """The peer left its answers unread for the idle timeout."""


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


__all__ = ["ListenerOptions", "MllpListener"]
