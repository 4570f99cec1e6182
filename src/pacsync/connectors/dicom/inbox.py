"""The C-STORE inbox: received instances written durably into a managed archive and
indexed before the sender is told they are stored.

Each instance is kept as the bytes received (the file meta information of its
presentation context, :mod:`.file_meta`, then the dataset exactly as sent; nothing
is decoded and encoded again).  It is written to ``<root>/.incoming/`` (hidden: scans
skip it), flushed with ``fsync``, its header read from the written file, renamed to
``<root>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` and indexed
in one transaction.  Any failure removes what was written (and puts back a file it
was replacing), so nothing is partly stored.  Those told of stored instances
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
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import xxhash

from pacsync.connectors.dicom.header import read_header
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom
from pacsync.imaging.ports import ArchiveIndex, FileStat, HeaderReader, IndexChanges, Parsed

log = logging.getLogger("pacsync.dicom.inbox")

INCOMING = ".incoming"
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

    def receive(self, data: bytes, sop_instance_uid: str, sop_class_uid: str) -> Received:
        """Store and index one instance given as Part 10 bytes.

        :class:`InvalidDicom` for a dataset that cannot be read (or
        :class:`DatasetMismatch`: not the announced instance), ``OSError`` when it
        cannot be written; any error from the index.  Nothing is left behind by any
        of them."""
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        temp = incoming / f"{uuid.uuid4().hex}.part"
        try:
            self._write(temp, data)
            header = self.read(temp)
            _check(header, sop_instance_uid, sop_class_uid)
            relative = "/".join((str(header.study_instance_uid),
                                 str(header.series_instance_uid),
                                 f"{header.sop_instance_uid}.dcm"))  # fmt: skip
            with self._lock:
                received = self._place(temp, relative, data, header)
        finally:
            temp.unlink(missing_ok=True)
        if self.on_stored is not None and received.outcome is not Outcome.UNCHANGED:
            try:
                self.on_stored(header)
            except Exception:  # the instance is stored and indexed: the sender is told so
                log.exception("%s: after storing %s", self.archive, header.sop_instance_uid)
        return received

    def close(self) -> None:
        if self.on_stored is not None:
            self.on_stored.close()

    def _write(self, temp: Path, data: bytes) -> None:
        with open(temp, "xb") as file:
            file.write(data)
            if self.durable:
                file.flush()
                os.fsync(file.fileno())

    def _place(self, temp: Path, relative: str, data: bytes, header: InstanceHeader) -> Received:
        final = self.root / relative
        backup: Path | None = None
        outcome = Outcome.STORED
        if final.exists():
            if dataset_part(final.read_bytes()) == dataset_part(data):
                return Received(Outcome.UNCHANGED, relative, header)
            outcome = Outcome.REPLACED
            backup = temp.with_suffix(".old")
            os.replace(final, backup)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)
            if self.durable:
                _sync_folder(final.parent)
            st = final.stat()
            stat = FileStat(relative, st.st_size, st.st_mtime_ns, st.st_ino)
            digest = xxhash.xxh3_128(data).hexdigest()
            self.index.apply(
                self.archive, IndexChanges(parsed=[Parsed(stat, header, content_hash=digest)])
            )
        except BaseException:
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
        return Received(outcome, relative, header)


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


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
