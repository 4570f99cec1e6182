"""Parsing archive files in parallel: a process pool sized to the cores (a ParsePool).

Each worker reads headers with :func:`pacsync.connectors.dicom.header.read_header`
(pixel data is never read).  A file that is not DICOM, truncated or corrupt comes
back ``invalid`` with its reason, one that cannot be read ``unreadable``: neither
stops the scan.  Workers start from a fork server, so nothing of the parent's
threads or connections is inherited."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from pacsync.connectors.dicom.header import read_header
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom, WorkerLost
from pacsync.imaging.ports import FileStat, Parsed

CHUNK = 128  # files per task: large enough to amortise the round trip, small enough to share
# below this many files one process is faster than starting a pool (about 7,000 files/s
# in-process against ~1 s to start workers that have imported pydicom)
POOL_FROM = 4000


def parse_file(
    root: str, stat: FileStat, read: Callable[[Path], InstanceHeader] = read_header
) -> Parsed:
    try:
        return Parsed(stat, read(Path(root, stat.path)))
    except InvalidDicom as error:
        return Parsed(stat, None, "invalid", error.message)
    except OSError as error:
        return Parsed(stat, None, "unreadable", error.strerror or str(error))


def _parse_chunk(root: str, files: Sequence[FileStat]) -> list[Parsed]:
    return [parse_file(root, stat) for stat in files]


class ProcessParsePool:
    """Parses in ``workers`` processes (default: one per core); small batches in-process."""

    def __init__(
        self, workers: int | None = None, chunk: int = CHUNK, pool_from: int = POOL_FROM
    ) -> None:
        # one core stays with the process that writes the index: on 2 cores a pool of
        # two parsers measured slower than parsing in that process
        self.workers = workers or max(1, (os.cpu_count() or 1) - 1)
        self.chunk = chunk
        self.pool_from = pool_from

    def parse(self, root: str, files: Sequence[FileStat]) -> Iterator[Parsed]:
        if self.workers < 2 or len(files) < max(self.pool_from, 2 * self.chunk):
            for stat in files:
                yield parse_file(root, stat)
            return
        context = multiprocessing.get_context("forkserver")
        # the fork server imports the reader once; every worker is a fork of it
        context.set_forkserver_preload(["__main__", __name__])
        try:
            with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
                tasks = [
                    pool.submit(_parse_chunk, root, files[start : start + self.chunk])
                    for start in range(0, len(files), self.chunk)
                ]
                try:
                    for done in as_completed(tasks):
                        yield from done.result()
                finally:
                    for task in tasks:
                        task.cancel()
        except BrokenProcessPool:
            raise WorkerLost(
                "a header-parsing worker stopped (killed or out of memory); what was "
                "indexed before it is kept"
            ) from None
