"""Writing batches in the background, one at a time and in order.

While the destination commits batch N (network, index maintenance, fsync),
the caller maps and validates batch N+1.  At most one write is in flight, so
checkpoints still advance batch by batch; a failed write surfaces at the next
hand-over and nothing after it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from pacsync.ports import WriteBatch


class OrderedWriter:
    """Runs ``write`` for each batch on one background thread, in submission order."""

    def __init__(self, write: Callable[[WriteBatch], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pacsync-writer")
        self._in_flight: tuple[Future[None], WriteBatch] | None = None

    def submit(self, batch: WriteBatch) -> WriteBatch | None:
        """Queue ``batch``; returns the previous batch once it is committed (or None)."""
        done = self.wait()
        self._in_flight = (self._pool.submit(self._write, batch), batch)
        return done

    def wait(self) -> WriteBatch | None:
        """Block until the write in flight is committed; re-raise its error."""
        if self._in_flight is None:
            return None
        future, batch = self._in_flight
        self._in_flight = None
        future.result()
        return batch

    def close(self) -> None:
        """Let the write in flight finish (its outcome is not reported) and stop the thread."""
        if self._in_flight is not None:
            self._in_flight[0].exception()
            self._in_flight = None
        self._pool.shutdown(wait=True)
