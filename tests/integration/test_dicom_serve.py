"""``pacsync serve --dicom``: the DICOM SCP runs beside the REST API in one process, and
a configured node's echoscu is answered while an unknown AE is refused."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def echo(port: int, calling: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", "PACSYNC", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TCP_NODELAY": "1"},
        check=False,
    )


def test_serve_runs_the_scp_beside_the_api(pacsync: Any) -> None:
    if shutil.which("echoscu") is None:
        pytest.fail("DCMTK echoscu is missing: ./scripts/services installs it")
    added = pacsync("dicom", "node", "add", "modality", "dicom://CT01@127.0.0.1:104")
    assert added.returncode == 0, added.stdout + added.stderr
    dicom_port, http_port = free_port(), free_port()
    server = pacsync.start(
        "serve", "--port", str(http_port), "--dicom", env={"PACSYNC_DICOM_PORT": str(dicom_port)}
    )
    try:
        deadline = time.monotonic() + 30
        answered = echo(dicom_port, "CT01")
        while answered.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
            answered = echo(dicom_port, "CT01")
        assert answered.returncode == 0, answered.stdout + answered.stderr
        refused = echo(dicom_port, "STRANGER")
        assert refused.returncode != 0
        assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert f"DICOM SCP PACSYNC on 127.0.0.1:{dicom_port}" in out, out + err
