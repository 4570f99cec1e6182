"""Walking an archive root on a local disk or a mounted NAS share (a TreeWalker), and
hashing a file's content where its stat is ambiguous (a ContentHasher).

The walk uses ``os.scandir`` (the inode comes with each entry; one ``stat`` per
file, no content read).  Hidden files and folders (``.name``) are skipped: NAS
devices keep their own bookkeeping there (``.@__thumb``, ``.DS_Store``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import xxhash

from pacsync.errors import ArchiveOffline
from pacsync.imaging.ports import FileStat, WalkProblem

_READ = 1 << 20


def walk(root: str) -> Iterator[FileStat | WalkProblem]:
    """Every regular file under ``root`` (relative '/'-separated paths), depth first."""
    base = Path(root)
    try:
        if not base.is_dir():
            raise ArchiveOffline(f"archive root {root} is missing or not a folder")
        top = os.scandir(base)
    except PermissionError as error:
        raise ArchiveOffline(f"archive root {root} cannot be read: {error.strerror}") from None
    except FileNotFoundError:
        raise ArchiveOffline(f"archive root {root} is missing") from None
    except OSError as error:  # a stale NFS/SMB mount answers EIO or ESTALE
        raise ArchiveOffline(f"archive root {root} cannot be read: {error}") from None
    prefix_len = len(os.fspath(base).rstrip("/")) + 1
    stack = [(top, "")]
    while stack:
        folder, where = stack[-1]
        try:
            entry = next(folder, None)
        except OSError as error:
            stack.pop()
            folder.close()
            _still_there(root)
            yield WalkProblem(where, f"listing stopped: {error.strerror or error}")
            continue
        if entry is None:
            stack.pop()
            folder.close()
            continue
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                try:
                    stack.append((os.scandir(entry.path), entry.path[prefix_len:]))
                except OSError as error:
                    _still_there(root)
                    yield WalkProblem(entry.path[prefix_len:], error.strerror or str(error))
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while we walked: the next scan sees it gone
        except OSError as error:
            _still_there(root)
            yield WalkProblem(entry.path[prefix_len:], error.strerror or str(error))
            continue
        yield FileStat(entry.path[prefix_len:], st.st_size, st.st_mtime_ns, st.st_ino)


def _still_there(root: str) -> None:
    """An error under the root is a problem with one folder, unless the root is gone."""
    if not os.path.isdir(root):
        raise ArchiveOffline(f"archive root {root} disappeared during the scan")


def content_hash(root: str, path: str) -> str:
    """The xxh3-128 hex digest of a file's content."""
    digest = xxhash.xxh3_128()
    with open(os.path.join(root, path), "rb") as file:
        while chunk := file.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()
