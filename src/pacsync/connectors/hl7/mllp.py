"""MLLP, the Minimal Lower Layer Protocol of HL7 v2 (HL7 Transport Specification, Release 2).

A block is ``<VT> payload <FS><CR>`` (0x0B, 0x1C 0x0D).  :class:`Framer` is an
incremental decoder: it takes bytes as they arrive, in any chunking (an end block
split between FS and CR included), and returns complete payloads and the problems
found on the way (bytes outside a block, a block given up for a new start byte, a
block over the size limit); whitespace between blocks is not a problem.  It never
raises, so one bad block costs that block only and the connection goes on with
the next start byte.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

START = b"\x0b"
END = b"\x1c\r"
_FS = 0x1C
_CR = 0x0D


class Problem(Enum):
    """What the framer dropped, with the HL7 words for it."""

    OUTSIDE_BLOCK = "bytes outside an MLLP block"
    TOO_LARGE = "message larger than the configured maximum"


HEAD = 4096  # bytes kept of an oversize block: enough for its MSH, to answer it


@dataclass(frozen=True, slots=True)
class Dropped:
    problem: Problem
    size: int  # bytes dropped
    head: bytes = b""  # the start of an oversize block
    position: int = 0  # payloads of the same ``feed`` call that came before it


def frame(payload: bytes) -> bytes:
    """One MLLP block around ``payload``."""
    return START + payload + END


class Framer:
    """Splits a byte stream into MLLP payloads.

    ``max_size`` bounds one payload; a longer block is skipped to its end block
    and reported, without holding more than ``max_size`` bytes of it.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._inside = False
        self._skipping = False  # inside an oversize block: drop to its end
        self._skipped = 0
        self._head = b""
        self._held_fs = False  # the last read ended with FS: a CR next ends the block

    @property
    def pending(self) -> int:
        """Bytes held of a block not yet complete."""
        return len(self._buffer)

    @property
    def inside(self) -> bool:
        return self._inside or self._skipping

    def feed(self, data: bytes) -> tuple[list[bytes], list[Dropped]]:
        payloads: list[bytes] = []
        dropped: list[Dropped] = []
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            events = len(dropped)
            pos = self._step(data, view, pos, payloads, dropped)
            if len(dropped) > events:  # one event a step: no payload came with it
                dropped[-1] = replace(dropped[-1], position=len(payloads))
        return payloads, dropped

    def _step(
        self,
        data: bytes,
        view: memoryview,
        pos: int,
        payloads: list[bytes],
        dropped: list[Dropped],
    ) -> int:
        """Consume from ``pos`` up to the next event; the position after it."""
        if self._held_fs:
            return self._after_fs(data, pos, payloads, dropped)
        if self._skipping:
            return self._skip(data, pos, dropped)
        if self._inside:
            return self._collect(data, view, pos, payloads, dropped)
        start = data.find(START, pos)
        if start < 0:
            if not _only_whitespace(view[pos:]):
                dropped.append(Dropped(Problem.OUTSIDE_BLOCK, len(data) - pos))
            return len(data)
        if start > pos and not _only_whitespace(view[pos:start]):
            dropped.append(Dropped(Problem.OUTSIDE_BLOCK, start - pos))
        self._inside = True
        return start + 1

    def _after_fs(
        self, data: bytes, pos: int, payloads: list[bytes], dropped: list[Dropped]
    ) -> int:
        """The previous read ended with FS: a CR now completes the end block."""
        self._held_fs = False
        if data[pos] == _CR:
            if self._skipping:
                self._skipping = False
                dropped.append(Dropped(Problem.TOO_LARGE, self._skipped, self._head))
                self._skipped = 0
            else:
                payloads.append(bytes(self._buffer))
                self._buffer.clear()
                self._inside = False
            return pos + 1
        if self._skipping:  # not an end block: the FS was part of the block
            self._skipped += 1
        else:
            self._buffer.append(_FS)
        return pos

    def _collect(
        self,
        data: bytes,
        view: memoryview,
        pos: int,
        payloads: list[bytes],
        dropped: list[Dropped],
    ) -> int:
        end = data.find(END, pos)
        stop = end if end >= 0 else len(data)
        restart = data.find(START, pos, stop)
        if restart >= 0:  # a new block before this one ended: the sender gave up on it
            self._buffer += view[pos:restart]
            if self._buffer:
                dropped.append(Dropped(Problem.OUTSIDE_BLOCK, len(self._buffer)))
            self._buffer.clear()
            return restart + 1
        held = end < 0 and data[stop - 1] == _FS  # maybe the first half of the end block
        content = stop - 1 if held else stop
        if len(self._buffer) + (content - pos) > self.max_size:
            self._skipped = len(self._buffer) + (content - pos)
            room = max(0, HEAD - len(self._buffer))
            self._head = bytes(self._buffer[:HEAD]) + data[pos : min(content, pos + room)]
            self._buffer.clear()
            self._inside = False
            if end >= 0:
                dropped.append(Dropped(Problem.TOO_LARGE, self._skipped, self._head))
                self._skipped = 0
                return end + len(END)
            self._skipping = True
            self._held_fs = held
            return len(data)
        if end >= 0:
            if self._buffer:
                self._buffer += view[pos:end]
                payloads.append(bytes(self._buffer))
                self._buffer.clear()
            else:
                payloads.append(data[pos:end])
            self._inside = False
            return end + len(END)
        self._buffer += view[pos:content]
        self._held_fs = held
        return len(data)

    def _skip(self, data: bytes, pos: int, dropped: list[Dropped]) -> int:
        end = data.find(END, pos)
        stop = end if end >= 0 else len(data)
        restart = data.find(START, pos, stop)
        if restart >= 0:  # the oversize block never ended: the sender gave up on it
            self._skipped += restart - pos
            dropped.append(Dropped(Problem.OUTSIDE_BLOCK, self._skipped))
            self._skipping = False
            self._skipped = 0
            self._inside = True
            return restart + 1
        if end < 0:
            held = data[-1] == _FS
            self._skipped += len(data) - pos - int(held)
            self._held_fs = held
            return len(data)
        self._skipped += end - pos
        dropped.append(Dropped(Problem.TOO_LARGE, self._skipped, self._head))
        self._skipping = False
        self._skipped = 0
        return end + len(END)


def _only_whitespace(chunk: memoryview) -> bool:
    return not bytes(chunk).strip()


__all__ = ["END", "START", "Dropped", "Framer", "Problem", "frame"]
