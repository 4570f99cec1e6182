"""``pacsync dicom-listen --processes 2``: two storescu senders at once, one of them
sending every other instance again, into worker processes sharing one port and one
SQLite store: every instance stored once and indexed, the counts right."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.db.archive_tables import image_instances, image_patients, image_series, image_studies

pytestmark = pytest.mark.integration

SENDER = "STORESCU"
STUDY = "1.2.826.0.1.3680043.10.3001.1"
PER_SERIES = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dcmtk(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(a) for a in args], env={**os.environ, "TCP_NODELAY": "1"}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def finished(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def wait_for_echo(port: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        echo = dcmtk("echoscu", "-aet", SENDER, "-aec", "PACSYNC", "127.0.0.1", port)
        out, _ = echo.communicate(timeout=30)
        if echo.returncode == 0:
            return
        assert time.monotonic() < deadline, out
        time.sleep(0.3)


def test_two_processes_store_and_index_concurrent_senders(pacsync: Any, tmp_path: Path) -> None:
    home = tmp_path / "listen-home"
    settings = Settings(home=home, database_url=None)
    store = bootstrap.store(settings)
    store.connections.put("modality", "dicom", f"dicom://{SENDER}@127.0.0.1:104")
    store.engine.dispose()
    files = []
    for series in (1, 2):
        for n in range(1, PER_SERIES + 1):
            path = tmp_path / "files" / f"{series}-{n}.dcm"
            path.parent.mkdir(exist_ok=True)
            realistic_ct(path, patient_id="MP-1", patient_name="DOE^JANE", study_uid=STUDY,
                         series_uid=f"{STUDY}.{series}", sop_uid=f"{STUDY}.{series}.{n}",
                         instance_number=n, rows=64, columns=64)  # fmt: skip
            files.append(path)
    port = str(free_port())
    process = pacsync.start("dicom-listen", "--port", port, "--processes", "2",
                            env={"PACSYNC_HOME": str(home)})  # fmt: skip
    try:
        wait_for_echo(port)
        store_to = ("storescu", "-R", "-aet", SENDER, "-aec", "PACSYNC", "127.0.0.1", port)
        senders = [dcmtk(*store_to, *part) for part in (files, files[::2])]
        for sender in senders:
            finished(sender)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"listening on 127.0.0.1:{port} (2 processes)" in out, out
    assert "Traceback" not in err, err
    assert "ERROR" not in err, err

    stored = sorted(p.name for p in (home / "inbox" / STUDY).rglob("*.dcm"))
    assert len(stored) == 2 * PER_SERIES
    store = bootstrap.store(settings)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(image_instances)).scalar() == 40
        series = dict(conn.execute(select(image_series.c.series_uid,
                                          image_series.c.instance_count)).all())  # fmt: skip
        study = conn.execute(select(image_studies)).one()
        patient = conn.execute(select(image_patients)).one()
    store.engine.dispose()
    assert series == {f"{STUDY}.1": PER_SERIES, f"{STUDY}.2": PER_SERIES}
    assert (study.study_uid, study.instance_count, study.series_count) == (STUDY, 40, 2)
    assert (patient.patient_id, patient.study_count) == ("MP-1", 1)
