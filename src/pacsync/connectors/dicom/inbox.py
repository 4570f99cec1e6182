"""The C-STORE inbox: received instances written durably into a managed archive and
indexed before the sender is told they are stored.

Each instance is kept as the bytes received (the file meta information of its
presentation context, :mod:`.file_meta`, then the dataset exactly as sent; nothing
is decoded and encoded again).  It is written to ``<root>/.incoming/`` (hidden: scans
skip it), its header read from the written file, renamed to
``<root>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` and indexed
in one transaction.  ``receive`` returns (and the sender is told the instance is
stored) only once the file and its folder are flushed with ``fsync`` too; for a new
file those flushes run on the inbox's flushing threads while the header is read and
the index written, which are independent of them.  Any failure removes what was
written (and puts back a file it was replacing, or takes a new file out of the index
again), so nothing is partly stored; a crash before ``receive`` returns leaves at
worst a file the sender's next attempt replaces.  Those told of stored instances
(``on_stored``) are closed with the inbox.

Duplicate SOP Instance UIDs (the same study, series and instance UIDs again):

- a re-send whose dataset bytes are identical to the stored file's is a success
  and changes nothing (the file meta information, which names the sender, is not
  compared);
- different content replaces the stored file and is indexed again (a warning is
  logged): the newest copy received is the one kept;
- the same SOP Instance UID under another study or series is stored at its own
  path; the index holds the newest copy and records the older file as its duplicate
  (the index's last-copy-wins rule), so a search never returns it twice.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import xxhash

from pacsync.connectors.dicom.header import read_header
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom
from pacsync.imaging.ports import ArchiveIndex, FileStat, HeaderReader, IndexChanges, Parsed

Flush = Future[None]

log = logging.getLogger("pacsync.dicom.inbox")

INCOMING = ".incoming"
FLUSHING_THREADS = 4
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_META_START = 132  # preamble and DICM prefix
_GROUP_LENGTH = b"\x02\x00\x00\x00UL\x04\x00"


class Outcome(StrEnum):
    STORED = "stored"  # a new instance
    UNCHANGED = "unchanged"  # the same bytes again: nothing done
    REPLACED = "replaced"  # other bytes under the same UIDs: the stored file replaced


@dataclass(frozen=True, slots=True)
class Received:
    outcome: Outcome
    path: str  # relative to the inbox root
    header: InstanceHeader


class DatasetMismatch(InvalidDicom):
    """The dataset is DICOM but not the instance the request announced."""


class Stored(Protocol):
    """Told of each instance stored or replaced, once it is indexed."""

    def __call__(self, header: InstanceHeader) -> None: ...

    def close(self) -> None:
        """Finish with what it was told: the inbox closes."""


class Inbox:
    """The inbox archive ``archive`` at ``root``; ``receive`` is safe from many threads."""

    def __init__(
        self,
        archive: str,
        root: Path,
        index: ArchiveIndex,
        *,
        read: HeaderReader = read_header,
        durable: bool = True,
        on_stored: Stored | None = None,
    ) -> None:
        self.archive = archive
        self.root = root
        self.index = index
        self.read = read
        self.durable = durable
        self.on_stored = on_stored  # told of each instance stored or replaced, once indexed
        self._lock = threading.Lock()
        # threads start on first use: an inbox that stores nothing has none
        self._flushing = ThreadPoolExecutor(FLUSHING_THREADS, "inbox-flush") if durable else None

    def receive(self, data: bytes, sop_instance_uid: str, sop_class_uid: str) -> Received:
        """Store and index one instance given as Part 10 bytes.

        :class:`InvalidDicom` for a dataset that cannot be read (or
        :class:`DatasetMismatch`: not the announced instance), ``OSError`` when it
        cannot be written; any error from the index.  Nothing is left behind by any
        of them."""
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        temp = incoming / f"{uuid.uuid4().hex}.part"
        flushed: Flush | None = None
        try:
            flushed = self._write(temp, data)
            header = self.read(temp)
            _check(header, sop_instance_uid, sop_class_uid)
            relative = "/".join((str(header.study_instance_uid),
                                 str(header.series_instance_uid),
                                 f"{header.sop_instance_uid}.dcm"))  # fmt: skip
            with self._lock:
                received, flushes = self._place(temp, relative, data, header, flushed)
            self._await(received, flushes)
        finally:
            _settle(flushed)  # its file descriptor closed whatever happened
            temp.unlink(missing_ok=True)
        if self.on_stored is not None and received.outcome is not Outcome.UNCHANGED:
            try:
                self.on_stored(header)
            except Exception:  # the instance is stored and indexed: the sender is told so
                log.exception("%s: after storing %s", self.archive, header.sop_instance_uid)
        return received

    def close(self) -> None:
        if self._flushing is not None:
            self._flushing.shutdown(wait=True)
        if self.on_stored is not None:
            self.on_stored.close()

    def _write(self, temp: Path, data: bytes) -> Flush | None:
        """Write ``data`` to ``temp``; the flush of its bytes to disk, under way
        (None when the inbox is not durable)."""
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            raise
        if self._flushing is None:
            os.close(fd)
            return None
        return self._flushing.submit(_flush_and_close, fd)

    def _place(
        self, temp: Path, relative: str, data: bytes, header: InstanceHeader, flushed: Flush | None
    ) -> tuple[Received, Sequence[Flush]]:
        """Rename and index the written file; the flushes still to wait for (those of
        a new file, under way while it was indexed)."""
        final = self.root / relative
        backup: Path | None = None
        outcome = Outcome.STORED
        if final.exists():
            if dataset_part(final.read_bytes()) == dataset_part(data):
                return Received(Outcome.UNCHANGED, relative, header), ()
            outcome = Outcome.REPLACED
            _settle(flushed, check=True)  # the stored copy goes only for a durable successor
            flushed = None
            backup = temp.with_suffix(".old")
            os.replace(final, backup)
        flushes: list[Flush] = []
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)
            if self._flushing is not None:
                folder = self._flushing.submit(_sync_folder, final.parent)
                flushes = [folder] if flushed is None else [flushed, folder]
            if backup is not None:
                _settle(*flushes, check=True)
                flushes = []
            st = final.stat()
            stat = FileStat(relative, st.st_size, st.st_mtime_ns, st.st_ino)
            digest = xxhash.xxh3_128(data).hexdigest()
            self.index.apply(
                self.archive, IndexChanges(parsed=[Parsed(stat, header, content_hash=digest)])
            )
        except BaseException:
            _settle(*flushes)
            if backup is not None:
                os.replace(backup, final)
            else:
                final.unlink(missing_ok=True)
            raise
        if backup is not None:
            backup.unlink(missing_ok=True)
            log.warning(
                "%s: SOP instance %s received again with other content; the stored file "
                "is replaced by the new one", self.archive, header.sop_instance_uid,
            )  # fmt: skip
        return Received(outcome, relative, header), flushes

    def _await(self, received: Received, flushes: Sequence[Flush]) -> None:
        """Wait for a new file's flushes; when one fails the file is taken out of the
        index and removed again, and the error raised."""
        try:
            _settle(*flushes, check=True)
        except BaseException:
            with self._lock:
                self._withdraw(received.path)
            raise

    def _withdraw(self, relative: str) -> None:
        try:
            known = self.index.known_files(self.archive).get(relative)
            if known is not None:
                self.index.apply(self.archive, IndexChanges(deleted=[known]))
        except Exception:  # the file goes anyway: the archive's next scan drops its entry
            log.exception("%s: taking %s out of the index", self.archive, relative)
        (self.root / relative).unlink(missing_ok=True)


def dataset_part(data: bytes) -> bytes:
    """The dataset of Part 10 bytes, without the preamble and file meta information
    (all of ``data`` when its meta group has no group length)."""
    if data[_META_START : _META_START + 8] != _GROUP_LENGTH:
        return data
    (length,) = struct.unpack_from("<I", data, _META_START + 8)
    return data[_META_START + 12 + length :]


def _check(header: InstanceHeader, sop_instance_uid: str, sop_class_uid: str) -> None:
    if header.sop_instance_uid != sop_instance_uid:
        raise DatasetMismatch(
            f"the dataset's SOP Instance UID {header.sop_instance_uid} is not the "
            f"announced {sop_instance_uid}"
        )
    if header.sop_class_uid and header.sop_class_uid != sop_class_uid:
        raise DatasetMismatch(
            f"the dataset's SOP Class UID {header.sop_class_uid} is not the announced "
            f"{sop_class_uid}"
        )
    for name, value in (
        ("Study Instance UID", header.study_instance_uid),
        ("Series Instance UID", header.series_instance_uid),
        ("SOP Instance UID", header.sop_instance_uid),
    ):
        if not value or len(value) > 64 or not _UID.match(value):
            raise InvalidDicom(f"no valid {name} in the dataset: {value!r}")


def _settle(*flushes: Flush | None, check: bool = False) -> None:
    """Wait for every flush; with ``check`` the first one's error is raised."""
    failure: BaseException | None = None
    for flush in flushes:
        if flush is not None:
            error = flush.exception()
            failure = failure or error
    if check and failure is not None:
        raise failure


def _flush_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
