"""Several processes accepting on one listening socket: two associations open at the
same time are served by two processes, and each process serves what it accepts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from pacsync.connectors.dicom.listener import SharedServer, listening_socket

AE_TITLE = "LISTENER"


def _serve(listener: socket.socket, served: Path) -> None:
    """A worker: a Verification SCP on the shared socket that writes down, for each
    connection it accepts, the caller's port and its own process ID."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def opened(event: evt.Event) -> None:
        with served.open("a") as out:
            out.write(f"{event.address[1]} {os.getpid()}\n")

    ae = AE(ae_title=AE_TITLE)
    ae.add_supported_context(Verification)
    server = ae.make_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_CONN_OPEN, opened)],
                            server_class=SharedServer, listener=listener)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    thread.join()


@contextmanager
def workers(count: int, served: Path) -> Iterator[int]:
    """``count`` worker processes on one listening socket; its port."""
    with listening_socket("127.0.0.1", 0) as listener:
        context = multiprocessing.get_context("fork")
        procs = [context.Process(target=_serve, args=(listener, served)) for _ in range(count)]
        for proc in procs:
            proc.start()
        try:
            yield int(listener.getsockname()[1])
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(10)
            assert [proc.exitcode for proc in procs] == [0] * count


def associate(port: int) -> Association:
    ae = AE(ae_title="CALLER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=AE_TITLE)
    assert assoc.is_established
    return assoc


def local_port(assoc: Association) -> int:
    assert assoc.dul.socket is not None
    assert assoc.dul.socket.socket is not None
    return int(assoc.dul.socket.socket.getsockname()[1])


def served_by(served: Path) -> dict[int, int]:
    lines = served.read_text().split()
    return {int(port): int(pid) for port, pid in zip(lines[::2], lines[1::2], strict=True)}


def together(port: int) -> list[Association]:
    """Two associations requested at the same moment."""
    start = threading.Barrier(2)
    made: list[Association] = []

    def request() -> None:
        start.wait()
        made.append(associate(port))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 2
    return made


@pytest.mark.parametrize("attempt", range(3))
def test_one_association_then_another_are_served_by_two_processes(
    tmp_path: Path, attempt: int
) -> None:
    served = tmp_path / "served"
    with workers(2, served) as port:
        first = associate(port)
        second = associate(port)
        try:
            for assoc in (first, second):
                assert assoc.send_c_echo().Status == 0x0000
            pids = served_by(served)
            assert pids[local_port(first)] != pids[local_port(second)]
            assert os.getpid() not in pids.values()
        finally:
            first.release()
            second.release()


@pytest.mark.parametrize("attempt", range(3))
def test_two_associations_requested_together_are_served_by_two_processes(
    tmp_path: Path, attempt: int
) -> None:
    served = tmp_path / "served"
    with workers(2, served) as port:
        first, second = together(port)
        try:
            pids = served_by(served)
            assert pids[local_port(first)] != pids[local_port(second)]
        finally:
            first.release()
            second.release()


def test_a_connection_closed_before_associating_leaves_its_process_idle(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    with workers(2, served) as port:
        socket.create_connection(("127.0.0.1", port)).close()  # a port probe
        time.sleep(0.2)
        for _ in range(3):
            first, second = together(port)
            try:
                pids = served_by(served)
                assert pids[local_port(first)] != pids[local_port(second)]
            finally:
                first.release()
                second.release()
            served.unlink()
            time.sleep(0.2)  # both connections closed: both processes idle again


def test_associations_one_after_another_are_all_served(tmp_path: Path) -> None:
    served = tmp_path / "served"
    with workers(2, served) as port:
        for _ in range(6):
            assoc = associate(port)
            assert assoc.send_c_echo().Status == 0x0000
            assoc.release()
    assert len(served_by(served)) == 6
