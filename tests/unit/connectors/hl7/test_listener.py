"""The MLLP listener in-process on loopback, over the in-memory journal."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from pacsync.connectors.hl7 import listener as listener_module
from pacsync.connectors.hl7.intake import GroupCommit, Intake
from pacsync.connectors.hl7.listener import ListenerOptions, MllpListener
from pacsync.connectors.hl7.metrics import Hl7Metrics
from pacsync.connectors.hl7.mllp import Framer, frame
from pacsync.connectors.hl7.sender import Ack, read_ack
from pacsync.connectors.memory import MemoryMessageJournal


def adt(control_id: str, size: int = 0) -> bytes:
    head = f"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A01|{control_id}|P|2.5.1\r"
    return head.encode() + b"PID|1||" + b"X" * size + b"\r"


Scenario = Callable[[int, MemoryMessageJournal], Awaitable[None]]


def serve(scenario: Scenario, **options: float) -> MemoryMessageJournal:
    """Run ``scenario(port, journal)`` against a listener on a free port."""
    journal = MemoryMessageJournal()

    async def main() -> None:
        commit = GroupCommit(journal)
        intake = Intake("pms", commit, metrics=Hl7Metrics())
        settings = {"port": 0, "max_message_bytes": 4096, **options}
        listener = MllpListener(intake, ListenerOptions(**settings))  # type: ignore[arg-type]
        await listener.start()
        try:
            await asyncio.wait_for(scenario(listener.port, journal), 20)
        finally:
            await asyncio.wait_for(listener.close(), 5)
            commit.close()

    asyncio.run(main())
    return journal


async def read_acks(reader: asyncio.StreamReader, count: int) -> list[Ack]:
    framer = Framer(1 << 20)
    acks: list[Ack] = []
    while len(acks) < count:
        data = await reader.read(65536)
        assert data, f"closed after {len(acks)} of {count} answers"
        payloads, dropped = framer.feed(data)
        assert dropped == []
        acks += [read_ack(p) for p in payloads]
    return acks


def test_pipelined_messages_are_answered_in_order() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(adt(f"C{n}")) for n in range(100)))
        acks = await read_acks(reader, 100)
        assert [(a.code, a.control_id) for a in acks] == [("AA", f"C{n}") for n in range(100)]
        writer.close()
        await writer.wait_closed()

    journal = serve(scenario)
    assert journal.control_ids() == [f"C{n}" for n in range(100)]


def test_an_oversize_message_between_two_others_is_answered_in_its_place() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(adt("C1")) + frame(adt("BIG", 10_000)) + frame(adt("C2")))
        acks = await read_acks(reader, 3)
        assert [(a.code, a.control_id) for a in acks] == [
            ("AA", "C1"),
            ("AR", "BIG"),
            ("AA", "C2"),
        ]
        writer.close()
        await writer.wait_closed()

    journal = serve(scenario)
    assert journal.control_ids() == ["C1", "C2"]
    assert [m.control_id for m in journal.messages if not m.accepted] == ["BIG"]


def test_garbage_between_messages_is_skipped_and_the_connection_goes_on() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\xffnoise" + frame(adt("C1")) + b"more noise" + b"\x0bMSH|^~\\&|cut")
        writer.write(frame(adt("C2")) + frame(b"not hl7 at all"))
        acks = await read_acks(reader, 3)
        assert [(a.code, a.control_id) for a in acks] == [
            ("AA", "C1"),
            ("AA", "C2"),
            ("AR", "UNKNOWN"),
        ]
        writer.close()
        await writer.wait_closed()

    serve(scenario)


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(10), 5) == b""  # closed by the listener
        assert asyncio.get_running_loop().time() - started >= 0.25
        writer.close()
        await writer.wait_closed()

    serve(scenario, idle_timeout_s=0.3)


def test_connections_over_the_maximum_are_closed_and_the_others_served() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        first = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)
        third_reader, third_writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(third_reader.read(10), 5) == b""
        for reader, writer in (first, second):
            writer.write(frame(adt("C1")))
            assert [a.code for a in await read_acks(reader, 1)] == ["AA"]
            writer.close()
            await writer.wait_closed()
        third_writer.close()

    serve(scenario, max_connections=2)


def test_closing_the_listener_closes_its_connections() -> None:
    journal = MemoryMessageJournal()

    async def main() -> None:
        commit = GroupCommit(journal)
        listener = MllpListener(
            Intake("pms", commit, metrics=Hl7Metrics()), ListenerOptions(port=0)
        )
        await listener.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(frame(adt("C1")))
        assert [a.code for a in await read_acks(reader, 1)] == ["AA"]
        await asyncio.wait_for(listener.close(), 5)
        assert await asyncio.wait_for(reader.read(10), 5) == b""  # not left open until idle
        writer.close()
        await writer.wait_closed()
        commit.close()

    asyncio.run(main())
    assert journal.control_ids() == ["C1"]


def test_a_message_trickling_in_slower_than_the_idle_timeout_is_cut_off() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = asyncio.get_running_loop().time()
        message = frame(adt("SLOW"))
        closed = False
        for index in range(len(message)):  # a byte every 0.1 s: never silent for 0.5 s
            try:
                writer.write(message[index : index + 1])
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            if reader.at_eof() or await _closed(reader):
                closed = True
                break
            await asyncio.sleep(0.1)
        assert closed, "a trickling sender held its connection for the whole message"
        assert asyncio.get_running_loop().time() - started < 3
        writer.close()

    journal = serve(scenario, idle_timeout_s=0.5)
    assert journal.messages == []


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 0.001) == b""
    except TimeoutError:
        return False


def test_a_sender_that_never_reads_its_acks_is_closed_and_what_it_sent_is_kept() -> None:
    """Messages streamed by a peer that reads nothing: once the answers cannot be written
    for the idle timeout, the connection is closed instead of held for ever."""

    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers pile up soon
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        _, writer = await asyncio.open_connection(sock=sock)
        loop = asyncio.get_running_loop()
        started, closed, number = loop.time(), False, 0
        while loop.time() - started < 15 and not closed:
            writer.write(b"".join(frame(adt(f"C{number + n:06d}" + "X" * 150)) for n in range(50)))
            number += 50
            try:
                await asyncio.wait_for(writer.drain(), 0.2)
            except TimeoutError:  # the listener reads no more: it is stuck writing answers
                continue
            except ConnectionError:
                closed = True
        assert closed, "a peer that never reads its answers held the connection"
        writer.close()

    journal = serve(scenario, idle_timeout_s=0.5)
    kept = journal.control_ids()
    assert len(kept) > 100
    assert len(set(kept)) == len(kept)


def test_a_sender_that_half_closes_after_sending_still_gets_every_answer() -> None:
    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(adt(f"C{n}")) for n in range(20)))
        writer.write_eof()  # done sending: the answers must still come back
        acks = await read_acks(reader, 20)
        assert [a.control_id for a in acks] == [f"C{n}" for n in range(20)]
        assert await asyncio.wait_for(reader.read(10), 5) == b""  # then the listener closes
        writer.close()

    journal = serve(scenario)
    assert len(journal.control_ids()) == 20


def test_a_backlog_larger_than_one_commit_is_paused_and_answered_in_order() -> None:
    """More messages in flight than the listener takes from one peer at once: reading
    pauses until the backlog is answered, and nothing is lost or reordered."""
    count = listener_module.BACKLOG * 3

    async def scenario(port: int, journal: MemoryMessageJournal) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(adt(f"C{n:05d}")) for n in range(count)))
        acks = await read_acks(reader, count)
        assert [a.control_id for a in acks] == [f"C{n:05d}" for n in range(count)]
        writer.close()
        await writer.wait_closed()

    journal = serve(scenario)
    assert len(journal.control_ids()) == count
    assert max(len(batch) for batch in journal.commits) <= GroupCommit(journal).max_batch


def test_a_peer_that_stops_reading_a_few_answers_in_is_let_go_after_the_timeout() -> None:
    """Fewer unread answers than would block writing, then silence: the listener still
    lets the connection go after the idle timeout (a graceful close would wait for
    those answers for ever, holding the socket and a connection slot)."""
    journal = MemoryMessageJournal()

    async def main() -> None:
        commit = GroupCommit(journal)
        listener = MllpListener(
            Intake("pms", commit, metrics=Hl7Metrics()),
            ListenerOptions(port=0, idle_timeout_s=0.5),
        )
        await listener.start()
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers pile up soon
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", listener.port))
        connections = listener._connections
        try:
            number, began = 0, loop.time()
            while not any(c.transport and c.transport.get_write_buffer_size() for c in connections):
                assert loop.time() - began < 30, "the answers never piled up"
                batch = b"".join(frame(adt(f"C{number + n:07d}")) for n in range(50))
                await loop.sock_sendall(sock, batch)
                number += 50
                await asyncio.sleep(0.01)
            silent = loop.time()  # from now on the peer neither sends nor reads
            while connections:
                assert loop.time() - silent < 5, "the connection was held after the timeout"
                await asyncio.sleep(0.1)
        finally:
            sock.close()
            await asyncio.wait_for(listener.close(), 5)
            commit.close()

    asyncio.run(main())
    kept = journal.control_ids()
    assert len(kept) == len(set(kept)) > 0
