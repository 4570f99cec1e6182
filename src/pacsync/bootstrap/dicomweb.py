"""What DICOMweb serves, wired: instances found through the index, read from their
archive (a DICOM file as it is; a legacy JPEG 2000 image encapsulated as DICOM with
transfer syntax 1.2.840.10008.1.2.4.90), their frames as stored, their metadata with
bulk data as BulkDataURIs, and renderings cached on disk."""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from io import BytesIO
from pathlib import Path
from typing import Any, NoReturn

from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.connectors.dicom import frames as frame_data
from pacsync.connectors.dicom import jpeg2000, render
from pacsync.connectors.files.blobs import FileBlobStore
from pacsync.domain.imaging import INTEGER_FIELDS, InstanceHeader
from pacsync.errors import ArchiveOffline, NotFound
from pacsync.imaging.rendering import RenderedCache

_HEADER_FIELDS = {f.name for f in fields(InstanceHeader)}
BULK_THRESHOLD = 1 << 16  # binary values longer than this are left to a BulkDataURI
PIXEL_DATA = "7FE00010"
METADATA_CACHE_BYTES = 64 << 20  # encoded metadata kept in memory
FRAME_INDEXES = 512  # files whose frame positions are kept (a few hundred bytes each)


@dataclass(frozen=True)
class Located:
    """One instance and where its bytes are."""

    archive: str
    kind: str
    root: str
    path: str
    size: int
    mtime_ns: int
    header: InstanceHeader

    @property
    def file(self) -> Path:
        return Path(self.root, self.path)

    @property
    def cache_key(self) -> str:
        """Changes when the file does: a changed file is rendered again."""
        return f"{self.archive}/{self.header.sop_instance_uid}/{self.size}-{self.mtime_ns}"


def _located(row: dict[str, Any]) -> Located:
    values = {k: v for k, v in row.items() if k in _HEADER_FIELDS}
    for name in INTEGER_FIELDS:
        if values.get(name) is not None:
            values[name] = int(values[name])
    return Located(
        archive=row["archive"],
        kind=row["kind"],
        root=row["root"],
        path=row["path"],
        size=int(row["size"]),
        mtime_ns=int(row["mtime_ns"]),
        header=InstanceHeader(**values),
    )


class DicomWebService:
    def __init__(self, settings: Settings, store: bootstrap.Store) -> None:
        self.store = store
        blobs = FileBlobStore(settings.home / "rendered", settings.render_cache_mb << 20)
        self.cache = RenderedCache(blobs, render.render)
        self._indexes: OrderedDict[str, frame_data.FrameIndex | None] = OrderedDict()
        self._metadata: OrderedDict[str, bytes] = OrderedDict()
        self._metadata_bytes = 0
        self._lock = threading.Lock()

    def locate(
        self,
        study_uid: str | None,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        archive: str | None = None,
    ) -> list[Located]:
        rows = self.store.archive_search.locate(study_uid, series_uid, sop_uid, archive)
        found = [_located(row) for row in rows]
        if not found:
            what = sop_uid or series_uid or study_uid
            raise NotFound(
                f"no indexed instance for {what}",
                hint="Search first: GET /api/v1/dicomweb/studies?PatientID=…",
            )
        return found

    def part10(self, located: Located) -> bytes:
        """The instance as a DICOM Part 10 file."""
        data = self._read(located)
        if located.kind == "firebird-j2k":
            return jpeg2000.encapsulate(located.header, jpeg2000.codestream(data))
        return data

    def source(self, located: Located) -> bytes | Path:
        """The instance as Part 10: the file itself for a DICOM archive (read by whoever
        needs it, never whole when not needed), bytes for a legacy image."""
        if located.kind != "dicom":
            return self.part10(located)
        self._check_file(located)
        return located.file

    def frames(
        self, located: Located, numbers: list[int], accepted: list[frame_data.Choice]
    ) -> frame_data.Frames:
        """Frames as stored, read from the file by its frame index (kept for the last
        :data:`FRAME_INDEXES` files), or decoded when the client needs that."""
        source = self.source(located)
        if isinstance(source, Path):
            index = self._frame_index(located, source)
            if index is not None:
                found = frame_data.read_frames(source, index, numbers, accepted)
                if found is not None:
                    return found
        return frame_data.frames(source, numbers, accepted)

    def _frame_index(self, located: Located, path: Path) -> frame_data.FrameIndex | None:
        key = located.cache_key
        with self._lock:
            if key in self._indexes:
                self._indexes.move_to_end(key)
                return self._indexes[key]
        index = frame_data.frame_index(path)
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > FRAME_INDEXES:
                self._indexes.popitem(last=False)
        return index

    def metadata(self, located: Located, instance_url: str) -> dict[str, Any]:
        """The DICOM JSON of the instance's attributes; binary values over 64 KiB and
        the pixel data as BulkDataURIs under ``instance_url``/bulk/."""
        from pydicom import dcmread  # the JSON conversion is pydicom's

        source = self.source(located)
        dataset = dcmread(BytesIO(source) if isinstance(source, bytes) else source,
                          stop_before_pixels=True)  # fmt: skip
        syntax = str(dataset.file_meta.TransferSyntaxUID)

        def bulk(element: Any) -> str:
            return f"{instance_url}/bulk/{int(element.tag):08X}"

        found = dataset.to_json_dict(BULK_THRESHOLD, bulk)
        found["00020010"] = {"vr": "UI", "Value": [syntax]}
        if "Rows" in dataset:  # an image: its pixel data follows the attributes
            wide = int(dataset.get("BitsAllocated", 8)) > 8 and not frame_data.encapsulated(syntax)
            found[PIXEL_DATA] = {
                "vr": "OW" if wide else "OB",
                "BulkDataURI": f"{instance_url}/bulk/{PIXEL_DATA}",
            }
        return dict(sorted(found.items()))

    def metadata_json(self, located: Located, instance_url: str) -> bytes:
        """:meth:`metadata` encoded, kept for the files read last (up to
        :data:`METADATA_CACHE_BYTES`): a series opened again is answered without
        parsing its files."""
        key = f"{located.cache_key}|{instance_url}"
        with self._lock:
            found = self._metadata.get(key)
            if found is not None:
                self._metadata.move_to_end(key)
                return found
        encoded = json.dumps(self.metadata(located, instance_url), separators=(",", ":"),
                             ensure_ascii=False).encode()  # fmt: skip
        with self._lock:
            self._metadata[key] = encoded
            self._metadata_bytes += len(encoded)
            while self._metadata_bytes > METADATA_CACHE_BYTES and self._metadata:
                _, dropped = self._metadata.popitem(last=False)
                self._metadata_bytes -= len(dropped)
        return encoded

    def bulk(self, located: Located, tag: str) -> tuple[str, bytes]:
        """The value of the top-level element ``tag`` (8 hex digits) and its VR."""
        from pydicom import dcmread

        source = self.source(located)
        dataset = dcmread(BytesIO(source) if isinstance(source, bytes) else source)
        element = dataset.get(int(tag, 16))
        if element is None or element.value is None:
            raise NotFound(f"the instance has no element ({tag[:4]},{tag[4:]})",
                           hint="Follow the BulkDataURIs of the instance's metadata.")  # fmt: skip
        value = element.value
        if isinstance(value, str):
            return str(element.VR), value.encode("utf-8")
        if not isinstance(value, bytes):
            raise NotFound(f"({tag[:4]},{tag[4:]}) is not bulk data",
                           hint="Read it from the instance's metadata.")  # fmt: skip
        return str(element.VR), value

    def rendered(
        self,
        located: Located,
        *,
        frame: int = 1,
        size: int | None = None,
        media_type: str = "image/png",
        window: tuple[float, float] | None = None,
        quality: int = 90,
    ) -> bytes:
        return self.cache.get(located.cache_key, lambda: self.source(located), frame=frame,
                              size=size, media_type=media_type, window=window,
                              quality=quality)  # fmt: skip

    def _check_file(self, located: Located) -> None:
        """The errors reading the file would raise, without reading it."""
        if not located.file.is_file():
            self._missing(located)

    def _missing(self, located: Located) -> NoReturn:
        if not os.path.isdir(located.root):
            raise ArchiveOffline(
                f"archive '{located.archive}' is offline: {located.root} is not reachable"
            )
        raise NotFound(
            f"the file of {located.header.sop_instance_uid} is gone: {located.path}",
            hint=f"Rescan the archive: pacsync archive scan {located.archive}",
        )

    def _read(self, located: Located) -> bytes:
        try:
            return located.file.read_bytes()
        except FileNotFoundError:
            self._missing(located)
        except OSError as error:
            raise ArchiveOffline(
                f"archive '{located.archive}': {located.path} cannot be read: {error.strerror}"
            ) from None
