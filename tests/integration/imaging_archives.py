"""Imaging archives as the integration tests see them: folders of DICOM files made
for a test (generated studies, pydicom's own sample files, corrupt files), the
``pacsync`` CLI with a store of its own that several tests of a module can share,
what ``archive scan`` and ``search --json`` print, read back, and a legacy Firebird
store whose server can be taken away (a TCP relay in front of it).

Every ``pacsync`` process costs about 1.7 s of imports, so tests run the commands
that only read side by side (:func:`together`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
from firebird.driver import DatabaseError
from pydicom.data import get_charset_files, get_testdata_file

import availability
from imaging_data import realistic_ct
from legacy_pacs import (
    FIREBIRD_HOST,
    FIREBIRD_PORT,
    LegacyStore,
    build_legacy_store,
    drop_legacy_store,
    remove_server_directory,
    server_directory,
    sysdba_password,
)

TESTS = Path(__file__).resolve().parents[1]
SCAN_COUNTS = ("files seen", "unchanged", "new", "changed", "moved", "deleted", "indexed",
               "invalid", "unreadable", "identity conflicts")  # fmt: skip
_COUNT = re.compile(r"(\d[\d,]*) (" + "|".join(SCAN_COUNTS) + r")\b")


# -- tests/conftest.py, found among the loaded plugins ------------------------------------------


def root_conftest(config: pytest.Config) -> ModuleType:
    """tests/conftest.py as loaded by pytest (``import conftest`` may give another
    folder's conftest)."""
    wanted = TESTS / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "/").resolve() == wanted:
            assert isinstance(plugin, ModuleType)
            return plugin
    raise AssertionError(f"{wanted} is not loaded")


def unavailable(config: pytest.Config, reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere (tests/availability.py's rule)."""
    availability.unavailable(reason)


def cli(config: pytest.Config, folder: Path, bytecode_cache: Path) -> Any:
    """A ``pacsync`` CLI (tests/conftest.py's ``Cli``) with its own store under
    ``folder``, for fixtures wider than one test."""
    conftest = root_conftest(config)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PACSYNC_") and k not in conftest._INHERITED_NOT
    }
    env.update(
        {
            "PACSYNC_HOME": str(folder / "pacsync-home"),
            "COLUMNS": "200",
            "PYTHONPYCACHEPREFIX": str(bytecode_cache),
        }
    )
    for name in ("FORCE_COLOR", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return conftest.Cli(env=env, cwd=folder)


# -- running and reading the CLI ----------------------------------------------------------------


Done = subprocess.CompletedProcess[str]


def together(
    pacsync: Any, *commands: tuple[str | Path, ...], env: Mapping[str, str] | None = None
) -> list[Done]:
    """Run several ``pacsync`` commands at the same time (commands that only read)."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: pacsync.run(*args, env=env), commands))


def output(done: Done) -> str:
    return f"exit {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"


def succeeded(done: Done) -> str:
    """The output of a command that must have exited 0."""
    assert done.returncode == 0, output(done)
    return done.stdout


def scan_counts(done: Done) -> dict[str, int]:
    """The counts ``pacsync archive scan`` printed (``{"new": 3, "indexed": 3, ...}``)."""
    found = {name: int(number.replace(",", "")) for number, name in _COUNT.findall(done.stdout)}
    assert set(SCAN_COUNTS) <= set(found), output(done)
    return {name: found[name] for name in SCAN_COUNTS}


def rows(done: Done) -> list[dict[str, Any]]:
    """The results of ``pacsync search --json`` (one JSON object a line)."""
    return [json.loads(line) for line in succeeded(done).splitlines() if line.strip()]


def names(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(archive, PatientName) of each result, sorted."""
    return sorted((r["archive"], r["PatientName"]) for r in results)


# -- folders of DICOM files ---------------------------------------------------------------------


def ct_series(
    folder: Path,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    images: int = 3,
    **options: Any,
) -> list[str]:
    """``images`` small CT images of one series of ``study_uid`` written to ``folder``
    (created); their SOP Instance UIDs."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = f"{study_uid}.1"
    written = []
    for number in range(1, images + 1):
        sop_uid = f"{series_uid}.{number}"
        realistic_ct(
            folder / f"IM{number:04d}.dcm",
            patient_id=patient_id,
            patient_name=patient_name,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=sop_uid,
            instance_number=number,
            **{"rows": 64, "columns": 64, **options},
        )
        written.append(sop_uid)
    return written


def sample(name: str, target: Path) -> Path:
    """One of pydicom's bundled test files copied to ``target``."""
    found = get_testdata_file(name)
    assert found is not None, f"pydicom test file {name} is missing"
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(found, target))


def charset_sample(name: str, target: Path) -> Path:
    """One of pydicom's character set test files copied to ``target``."""
    (found,) = get_charset_files(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(found, target))


#: the files :func:`corrupt_files` writes, by name
CORRUPT = ("notes.txt", "empty.dcm", "truncated.dcm", "random.dcm")


def corrupt_files(folder: Path, dicom: Path) -> None:
    """A text file, an empty file, ``dicom`` cut in the middle of its header, and random
    bytes, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("Scanned on the night shift; ask Rita for the rest.\n")
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "truncated.dcm").write_bytes(dicom.read_bytes()[:700])
    (folder / "random.dcm").write_bytes(os.urandom(4096))


# -- a legacy Firebird store --------------------------------------------------------------------


def legacy_store(config: pytest.Config, images: Path, **options: Any) -> Iterator[LegacyStore]:
    """A legacy store on the Firebird server (``legacy_pacs.build_legacy_store``),
    dropped afterwards; fails under CI and skips elsewhere without a server."""
    password = sysdba_password()
    if password is None:
        unavailable(config, "no Firebird SYSDBA password (set PACSYNC_TEST_FIREBIRD_PASSWORD)")
    try:
        socket.create_connection((FIREBIRD_HOST, FIREBIRD_PORT), timeout=3).close()
    except OSError as exc:
        unavailable(config, f"Firebird at {FIREBIRD_HOST}:{FIREBIRD_PORT} is not reachable: {exc}")
    directory = server_directory()
    try:
        store = build_legacy_store(directory / "legacy.fdb", images, password=password, **options)
    except DatabaseError as exc:
        remove_server_directory(directory)
        unavailable(config, f"cannot create a Firebird database: {' '.join(str(exc).split())}")
    try:
        yield store
    finally:
        drop_legacy_store(store)
        remove_server_directory(directory)


class Relay:
    """A TCP relay on a loopback port of its own to a server; ``close()`` takes the
    server away (nothing listens on the port any more)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        self.accepting.join(timeout=5)
        with self.lock:
            for one in self.sockets:
                one.close()
            self.sockets.clear()


def archive_table(done: Done) -> dict[str, dict[str, str]]:
    """The rows ``pacsync archive list`` printed, by archive name (the first line of each
    row: a long path or status reason goes on over further lines)."""
    columns = ("name", "kind", "path", "status", "patients", "studies", "instances",
               "failed files", "last scan")  # fmt: skip
    table: dict[str, dict[str, str]] = {}
    for line in succeeded(done).splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == len(columns) and cells[0] and cells[0] != "name":
            table[cells[0]] = dict(zip(columns, cells, strict=True))
    return table


def problem_files(done: Done) -> dict[str, tuple[str, str]]:
    """What ``pacsync archive status NAME --errors`` lists: path → (state, reason)."""
    found = re.findall(
        r"^(invalid|unreadable|duplicate) (\S+): (.+)$", succeeded(done), re.MULTILINE
    )
    return {path: (state, reason) for state, path, reason in found}
