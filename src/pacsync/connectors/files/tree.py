"""Walking an archive root on a local disk or a mounted NAS share (a TreeWalker), and
hashing a file's content where its stat is ambiguous (a ContentHasher).

The walk uses ``os.scandir`` (the inode comes with each entry; one ``stat`` per
file, no content read).  Hidden files and folders (``.name``) are skipped: NAS
devices keep their own bookkeeping there (``.@__thumb``, ``.DS_Store``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import xxhash

from pacsync.errors import ArchiveOffline
from pacsync.imaging.ports import FileStat, WalkProblem

_READ = 1 << 20
log = logging.getLogger("pacsync.archives")


class _Folder(Protocol):
    """An open folder listing (``os.scandir``)."""

    def __next__(self) -> os.DirEntry[str]: ...

    def close(self) -> None: ...


def walk(root: str) -> Iterator[FileStat | WalkProblem]:
    """Every regular file under ``root`` (relative '/'-separated paths), depth first."""
    prefix_len = len(os.fspath(Path(root)).rstrip("/")) + 1
    stack = [(_open_root(root), "")]
    try:
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
            elif not entry.name.startswith("."):
                found = _visit(entry, entry.path[prefix_len:], root)
                if isinstance(found, tuple):
                    stack.append(found)
                elif found is not None:
                    yield found
    finally:  # a walk abandoned half-way closes its open folders
        for folder, _ in stack:
            folder.close()


def _open_root(root: str) -> _Folder:
    trouble = root_trouble(root)
    if trouble is not None:
        raise ArchiveOffline(trouble)
    try:
        return os.scandir(root)
    except OSError as error:  # gone between the two looks
        raise ArchiveOffline(f"archive root {root} cannot be read: {error}") from None


def _visit(
    entry: os.DirEntry[str], relative: str, root: str
) -> FileStat | WalkProblem | tuple[_Folder, str] | None:
    """A file's stat, a sub-folder to list, a problem, or None (skipped)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return os.scandir(entry.path), relative
        if not entry.is_file(follow_symlinks=False):
            return None
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # removed while we walked: the next scan sees it gone
    except OSError as error:
        _still_there(root)
        return WalkProblem(relative, error.strerror or str(error))
    return FileStat(relative, st.st_size, st.st_mtime_ns, st.st_ino)


def _still_there(root: str) -> None:
    """An error under the root is a problem with one folder, unless the root is gone."""
    trouble = root_trouble(root)
    if trouble is not None:
        raise ArchiveOffline(trouble)


def root_trouble(root: str) -> str | None:
    """Why the root cannot be used now (missing, not a folder, unreadable), or None."""
    base = Path(root)
    try:
        if not base.is_dir():
            return f"archive root {root} is missing or not a folder"
        with os.scandir(base) as entries:
            next(entries, None)
    except OSError as error:  # a stale NFS/SMB mount answers EIO or ESTALE
        return f"archive root {root} cannot be read: {error.strerror or error}"
    return None


def stat_file(root: str, path: str) -> FileStat | None:
    try:
        st = os.stat(os.path.join(root, path))
    except FileNotFoundError:
        return None
    except OSError as error:
        root_missing = root_trouble(root)
        if root_missing:
            raise ArchiveOffline(root_missing) from None
        log.warning("%s/%s: %s", root, path, error)
        return None
    return FileStat(path, st.st_size, st.st_mtime_ns, st.st_ino)


def content_hash(root: str, path: str) -> str:
    """The xxh3-128 hex digest of a file's content."""
    digest = xxhash.xxh3_128()
    with open(os.path.join(root, path), "rb") as file:
        while chunk := file.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()
