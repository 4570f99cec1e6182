"""A real Orthanc (and a DCMTK ``storescp`` as a C-MOVE destination) on loopback for
the DICOM networking tests.

Orthanc runs with a config of its own in a temp folder: storage and index there,
free HTTP and DICOM ports, AE ``ORTHANC`` checking the called AE, and pacsync's AE
plus the ``storescp`` destination registered as modalities.  A missing binary raises
:class:`Unavailable`; fixtures turn it into :func:`unavailable` (a failure under CI).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

import availability

CONFTEST = Path(__file__).with_name("conftest.py")
ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AE = "ORTHANC"
PACSYNC_AE = "PACSYNC"
DESTINATION_AE = "STORESCP"
LOOPBACK = "127.0.0.1"


class Unavailable(Exception):
    """A peer's binary is missing: the test calls tests/conftest.py's ``unavailable``."""


def unavailable(config: pytest.Config, reason: str) -> NoReturn:
    """tests/availability.py's rule: fail under CI, skip elsewhere."""
    availability.unavailable(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _nodelay_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class StoreScp:
    """A DCMTK storescp writing what it receives to ``folder``."""

    port: int
    folder: Path
    ae: str = DESTINATION_AE

    def received(self) -> list[Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file())


@contextmanager
def storescp(folder: Path) -> Iterator[StoreScp]:
    binary = shutil.which("storescp")
    if binary is None:
        raise Unavailable("DCMTK storescp is not installed (apt-get install dcmtk)")
    folder.mkdir(parents=True, exist_ok=True)
    scp = StoreScp(free_port(), folder)
    process = subprocess.Popen(
        [binary, "-aet", scp.ae, "-od", str(folder), "--accept-all", str(scp.port)],
        env=_nodelay_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(scp.port, process, "storescp")
        yield scp
    finally:
        _stop(process)


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


@dataclass
class Orthanc:
    http_port: int
    dicom_port: int
    folder: Path
    ae: str = ORTHANC_AE

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def node_url(self) -> str:
        return f"dicom://{self.ae}@{LOOPBACK}:{self.dicom_port}"

    def upload(self, files: list[Path]) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for path in files:
                client.post("/instances", content=path.read_bytes()).raise_for_status()

    def get(self, path: str) -> object:
        response = httpx.get(self.url + path, timeout=30)
        response.raise_for_status()
        return response.json()

    def studies(self) -> set[str]:
        """The Study Instance UIDs Orthanc holds."""
        found = httpx.post(
            self.url + "/tools/find",
            json={"Level": "Study", "Query": {}, "Expand": True},
            timeout=30,
        ).json()
        return {s["MainDicomTags"]["StudyInstanceUID"] for s in found}

    def delete_study(self, study_uid: str) -> None:
        ids = httpx.post(self.url + "/tools/lookup", content=study_uid, timeout=30).json()
        for found in ids:
            httpx.delete(self.url + found["Path"], timeout=30).raise_for_status()


@contextmanager
def orthanc(folder: Path, *, pacsync_port: int, destination: StoreScp) -> Iterator[Orthanc]:
    """Orthanc started with its own config under ``folder``; stopped at the end."""
    if not ORTHANC.is_file():
        raise Unavailable(f"Orthanc is not installed at {ORTHANC} (apt-get install orthanc)")
    folder.mkdir(parents=True, exist_ok=True)
    server = Orthanc(free_port(), free_port(), folder)
    allowed = {"AllowEcho": True, "AllowFind": True, "AllowMove": True, "AllowGet": True,
               "AllowStore": True}  # fmt: skip
    config = {
        "Name": "pacsync-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": server.http_port,
        "DicomPort": server.dicom_port,
        "DicomAet": server.ae,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomModalities": {
            "pacsync": {"AET": PACSYNC_AE, "Host": LOOPBACK, "Port": pacsync_port, **allowed},
            "storescp": {"AET": destination.ae, "Host": LOOPBACK, "Port": destination.port},
        },
        "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.is_file() else [],
        "StableAge": 1,
        "LimitFindResults": 0,
        "LimitFindInstances": 0,
        "HttpDescribeErrors": True,
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(
        [str(ORTHANC), str(path)], env=_nodelay_env(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with {process.returncode}: "
                    + (folder / "orthanc.log").read_text(errors="replace")[-2000:]
                )
            try:
                httpx.get(server.url + "/system", timeout=0.5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("Orthanc did not answer /system within 30 s") from None
                time.sleep(0.1)
        wait_port(server.dicom_port, process, "Orthanc")
        yield server
    finally:
        _stop(process)
        log.close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port whose listen backlog is full: a connect gets no answer."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield int(listener.getsockname()[1])
    finally:
        for sock in (*fillers, listener):
            sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def late_relay(target_port: int, after_s: float) -> Iterator[int]:
    """A loopback port that refuses connections for ``after_s`` seconds, then relays
    each connection to ``target_port`` (a peer that comes up late)."""
    port = free_port()
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        if stop.wait(after_s):
            return
        with socket.create_server((LOOPBACK, port)) as listener:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection((LOOPBACK, target_port), timeout=5)
                upstream.settimeout(None)
                held.extend((client, upstream))
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    server = threading.Thread(target=serve, name="late-relay", daemon=True)
    server.start()
    try:
        yield port
    finally:
        stop.set()
        server.join(timeout=5)
        for sock in held:
            sock.close()
