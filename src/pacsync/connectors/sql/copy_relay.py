"""Binary COPY data from one or more source queries, relayed into one target COPY.

Each source statement is a ``COPY (…) TO STDOUT (FORMAT BINARY)`` on a
connection of its own, so several source backends compute rows at once; their
data is written into the target's ``COPY … FROM STDIN (FORMAT BINARY)`` in
blocks, never decoded.  PostgreSQL sends one CopyData message per row, the
file header with the first and the trailer alone, so the streams merge at
message boundaries: the first stream's header is kept, the others' dropped,
and one trailer ends the whole.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Engine

from pacsync.connectors.sql.errors import translate

BLOCK = 256 * 1024  # COPY data handed to the target at a time
HEADER = 19  # signature (11), flags (4), header extension length (4)
TRAILER = b"\xff\xff"


class _Stream:
    """One source COPY on a pooled connection of its own."""

    def __init__(self, engine: Engine, statement: str, *, first: bool) -> None:
        self.raw = engine.raw_connection()
        self.finished = False
        conn = self.raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        self.conn, self.pgconn = conn, conn.pgconn
        self.first, self.opening = first, True  # only the first stream's header is kept
        try:
            self.pgconn.send_query(statement.encode(conn.info.encoding))
            started = self.pgconn.get_result()
            if started is None or started.status != pq.ExecStatus.COPY_OUT:
                raise self.failed(started)
        except BaseException:  # not started: its connection is not handed back half-used
            self.close()
            raise

    def failed(self, result: pq.abc.PGresult | None) -> psycopg.Error:
        if result is None:
            return psycopg.OperationalError("the source ended the COPY without a result")
        return psycopg.errors.error_from_result(result, encoding=self.conn.info.encoding)

    def drain(self, parts: list[Any]) -> int:
        """Append what has arrived to ``parts``; its size (``finished`` tells the end)."""
        size = 0
        while True:
            length, data = self.pgconn.get_copy_data(1)
            if length == 0:
                return size
            if length < 0:
                self._end()
                return size
            if self.opening:  # the header, with the first row or the trailer after it
                self.opening = False
                if self.first:
                    parts.append(bytes(data[:HEADER]))
                    size += HEADER
                data = memoryview(data)[HEADER:]
                if not data or bytes(data) == TRAILER:
                    continue
            elif length == len(TRAILER) and bytes(data) == TRAILER:
                continue  # one trailer ends the merged data
            parts.append(data)
            size += len(data)

    def _end(self) -> None:
        ended = self.pgconn.get_result()
        while self.pgconn.get_result() is not None:
            pass
        if ended is None or ended.status != pq.ExecStatus.COMMAND_OK:
            raise self.failed(ended)
        self.finished = True

    def close(self) -> None:
        if self.finished:
            self.raw.close()
        else:  # mid-COPY: the connection cannot go back to the pool
            self.raw.invalidate()


def relay(engine: Engine, statements: Sequence[str], into: psycopg.Copy, where: str) -> None:
    """Run ``statements`` (COPY TO) on ``engine`` at once and write their rows into ``into``;
    a source error is raised as the pacsync error of ``where``."""
    streams: list[_Stream] = []
    try:
        for i, statement in enumerate(statements):
            streams.append(_Stream(engine, statement, first=i == 0))
        live = list(streams)
        parts: list[Any] = []
        size = 0
        while live:
            idle = True
            for stream in list(live):
                got = stream.drain(parts)
                size += got
                if got or stream.finished:
                    idle = False
                if stream.finished:
                    live.remove(stream)
            if size >= BLOCK or (parts and idle):
                into.write(b"".join(parts))
                parts, size = [], 0
            if idle and live:  # nothing arrived: wait on the sockets without the GIL
                select.select([s.pgconn.socket for s in live], [], [], 1.0)
                for stream in live:
                    stream.pgconn.consume_input()
        if parts:
            into.write(b"".join(parts))
        into.write(TRAILER)
    except psycopg.Error as exc:
        raise translate(exc, where) from exc
    finally:
        for stream in streams:
            stream.close()
