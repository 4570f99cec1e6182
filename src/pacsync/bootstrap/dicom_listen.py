"""``pacsync dicom-listen`` wired: the SCP in this process, or in worker processes that
share its port (:mod:`pacsync.connectors.dicom.listener`).

With several processes this one binds the port, makes sure the inbox archive exists,
forks the workers (each opens its own store and runs its own SCP on the shared
socket) and watches them: on ``stop`` each is asked to end (SIGTERM) and waited for;
a worker that ends by itself stops the others and is reported as a
:class:`~pacsync.errors.PacsyncError` (the service manager restarts the command).

Once an SCP listens, what the process has made so far is moved out of the garbage
collector's sight (``gc.freeze``): its full collections then walk only what serving
allocates (76 ms per full collection before, in the middle of an association)."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess

from pacsync import bootstrap
from pacsync.bootstrap import dicom_scp
from pacsync.config import Settings
from pacsync.connectors.dicom.listener import listening_socket
from pacsync.connectors.dicom.scp import Scp
from pacsync.errors import PacsyncError

log = logging.getLogger("pacsync.dicom.scp")

#: at most this many worker processes by default, however many cores there are
MAX_DEFAULT_PROCESSES = 8
STOP_SECONDS = 30.0  # a worker still running after this long is killed
WATCH_SECONDS = 0.5


def default_processes() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_PROCESSES))


def listen(
    settings: Settings,
    *,
    stop: threading.Event,
    started: Callable[[Scp, int], None],
    ae: str | None = None,
    host: str | None = None,
    port: int | None = None,
    processes: int = 1,
) -> None:
    """Serve until ``stop`` is set; ``started(scp, processes)`` once listening (``scp``:
    this process's SCP, the one that serves alone or a model of the workers')."""
    store = bootstrap.store(settings)
    scp = dicom_scp.scp(settings, store, ae=ae, host=host, port=port)
    if processes <= 1:
        scp.start()
        gc.freeze()
        try:
            started(scp, 1)
            stop.wait()
        finally:
            scp.stop()
        return
    store.engine.dispose()  # the workers open their own connections
    with listening_socket(scp.host, scp.port) as listener:
        scp.port = int(listener.getsockname()[1])
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(target=_work, args=(settings, listener, scp.ae_title, scp.host),
                            name=f"dicom-listen-{n + 1}", daemon=True)
            for n in range(processes)
        ]  # fmt: skip
        for worker in workers:
            worker.start()
        try:
            started(scp, processes)
            ended = _watch(workers, stop)
        finally:
            _end(workers)
    if ended is not None:
        raise PacsyncError(
            f"DICOM SCP worker {ended.name} ended with exit code {ended.exitcode}",
            hint="See the log above for why; the other workers were stopped.",
        )


def _watch(workers: Sequence[BaseProcess], stop: threading.Event) -> BaseProcess | None:
    """Until ``stop``: the first worker that ended by itself, if one does."""
    while not stop.wait(WATCH_SECONDS):
        for worker in workers:
            if not worker.is_alive():
                return worker
    return None


def _end(workers: Sequence[BaseProcess]) -> None:
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(STOP_SECONDS)
        if worker.is_alive():
            log.warning("DICOM SCP worker %s did not stop; killed", worker.name)
            worker.kill()
            worker.join()


def _work(settings: Settings, listener: socket.socket, ae: str, host: str) -> None:
    """A worker process: its own store and SCP on the shared socket, until SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    store = bootstrap.store(settings)
    scp = dicom_scp.scp(settings, store, ae=ae, host=host, port=0, listener=listener)
    scp.start()
    gc.freeze()
    try:
        stop.wait()
    finally:
        scp.stop()
        store.engine.dispose()
