"""``pacsync serve``: the REST API under uvicorn.

On a store with no API key at all, the first start creates an admin key and
prints it once; a store that ever had a key never gets one this way again.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pacsync import bootstrap
from pacsync.cli.console import reports_errors
from pacsync.config import Settings
from pacsync.db.audit import local_actor
from pacsync.domain.access import Role

APP = "pacsync.api.app:factory"  # by name: uvicorn imports it in each worker process
FIRST_KEY_NAME = "admin (created by the first pacsync serve)"


def first_admin_key(store: bootstrap.Store) -> str | None:
    """A new admin key's token when the store has never had a key, else None."""
    if store.api_keys.list():
        return None
    view, token = store.api_keys.create(FIRST_KEY_NAME, Role.ADMIN)
    store.audit.record(
        actor=local_actor(),
        action="key.create",
        target=view.id,
        outcome="ok",
        detail={"role": Role.ADMIN.value, "reason": "first serve"},
    )
    return token


def _announce(token: str) -> None:
    rule = "=" * 72
    print(
        f"{rule}\n"
        "pacsync: this store had no API keys, so an admin key was created:\n\n"
        f"    ADMIN API KEY: {token}\n\n"
        "It is shown this once and cannot be shown again: keep it somewhere safe.\n"
        "Send it as 'Authorization: Bearer <key>'; make more with `pacsync keys create`.\n"
        f"{rule}",
        flush=True,
    )


@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes")] = 1,
    dicom: Annotated[
        bool | None,
        typer.Option(
            "--dicom/--no-dicom", help="Run the DICOM SCP too (default: PACSYNC_DICOM_LISTEN)"
        ),
    ] = None,
    hl7: Annotated[
        bool | None,
        typer.Option(
            "--hl7/--no-hl7", help="Run the MLLP listener too (default: PACSYNC_HL7_LISTEN)"
        ),
    ] = None,
) -> None:
    """Serve the REST API (/api/v1, Swagger UI at /docs) and, when asked, the DICOM SCP
    and the HL7 MLLP listener."""
    settings = Settings()
    store = bootstrap.store(settings)
    try:
        token = first_admin_key(store)
    finally:
        store.engine.dispose()
    if token is not None:
        _announce(token)
    print(f"pacsync API on http://{host}:{port}/api/v1 (docs: /docs)", flush=True)
    import uvicorn  # here: the other commands do not pay for importing the server

    scp = _start_scp(settings) if (settings.dicom_listen if dicom is None else dicom) else None
    mllp = _start_mllp(settings) if (settings.hl7_listen if hl7 is None else hl7) else None
    try:
        _run(uvicorn, settings, host=host, port=port, workers=workers)
    finally:
        if scp is not None:
            scp.stop()
        if mllp is not None:
            mllp.stop()


def _start_scp(settings: Settings) -> Any:
    from pacsync.bootstrap import dicom_scp  # pydicom and pynetdicom only when asked for

    scp = dicom_scp.scp(settings, bootstrap.store(settings))
    listened = scp.start()
    print(f"pacsync DICOM SCP {scp.ae_title} on {scp.host}:{listened}", flush=True)
    return scp


def _start_mllp(settings: Settings) -> Any:
    from pacsync.bootstrap import hl7

    running = hl7.listener(settings, bootstrap.store(settings))
    listened = running.start()
    options = running.listener.options
    print(f"pacsync MLLP listener '{settings.hl7_feed}' on {options.host}:{listened}", flush=True)
    return running


def _run(uvicorn: Any, settings: Settings, *, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        server_header=False,
    )
