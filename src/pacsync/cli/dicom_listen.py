"""``pacsync dicom-listen``: the DICOM SCP in the foreground, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings

if TYPE_CHECKING:
    from pacsync.connectors.dicom.scp import Scp


@reports_errors
def listen(
    ae: Annotated[str | None, typer.Option(help="Our AE title (PACSYNC_DICOM_AE)")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (PACSYNC_DICOM_PORT)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (PACSYNC_DICOM_HOST)")] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes accepting associations on the port, each serving its own in "
            "parallel (default: the number of CPUs, at most 8)",
        ),
    ] = None,
) -> None:
    """Serve Verification, Storage (into the inbox archive), Query/Retrieve and
    Modality Worklist to the configured DICOM nodes (connections of kind dicom)."""
    from pacsync.bootstrap import dicom_listen  # pydicom and pynetdicom only for this command

    settings = Settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def started(scp: Scp, workers: int) -> None:
        peers = ", ".join(f"{p.ae_title}@{p.host}" for p in scp.peers) or "none configured"
        serving = f" ({workers} processes)" if workers > 1 else ""
        tls = " (TLS)" if scp.tls else ""
        console.print(
            f"DICOM SCP {scp.ae_title} listening on {scp.host}:{scp.port}{tls}{serving}; inbox "
            f"{scp.inbox.root}; peers: {peers}",
            highlight=False,
        )

    try:
        dicom_listen.listen(
            settings, stop=stop, started=started, ae=ae, host=host, port=port,
            processes=processes or dicom_listen.default_processes(),
        )  # fmt: skip
    finally:
        console.print("DICOM SCP stopped", highlight=False)
