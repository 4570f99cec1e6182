"""``pacsync dicom-listen``: the DICOM SCP in the foreground, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from pacsync import bootstrap
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings


@reports_errors
def listen(
    ae: Annotated[str | None, typer.Option(help="Our AE title (PACSYNC_DICOM_AE)")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (PACSYNC_DICOM_PORT)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (PACSYNC_DICOM_HOST)")] = None,
) -> None:
    """Serve Verification, Storage (into the inbox archive), Query/Retrieve and
    Modality Worklist to the configured DICOM nodes (connections of kind dicom)."""
    from pacsync.bootstrap import dicom_scp  # pydicom and pynetdicom only for this command

    settings = Settings()
    store = bootstrap.store(settings)
    scp = dicom_scp.scp(settings, store, ae=ae, host=host, port=port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    listened = scp.start()
    peers = ", ".join(f"{p.ae_title}@{p.host}" for p in scp.peers) or "none configured"
    console.print(
        f"DICOM SCP {scp.ae_title} listening on {scp.host}:{listened}; inbox "
        f"{scp.inbox.root}; peers: {peers}",
        highlight=False,
    )
    try:
        stop.wait()
    finally:
        scp.stop()
        console.print("DICOM SCP stopped", highlight=False)
