"""DCMTK's storescu sends a study to the pacsync SCP; ``pacsync study timeline``
then shows it received, with the instance count."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import availability
from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.bootstrap import dicom_scp
from pacsync.cli.app import app
from pacsync.config import Settings

pytestmark = pytest.mark.integration

STUDY = "1.2.826.0.1.3680043.10.1002.1"
SENDER = "STORESCU"


def test_a_study_sent_with_storescu_is_on_the_timeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("storescu") is None:
        availability.unavailable("DCMTK storescu missing (scripts/services installs it)")
    for name in [n for n in os.environ if n.startswith("PACSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PACSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    store = bootstrap.store(settings)
    store.connections.put("modality", "dicom", f"dicom://{SENDER}@127.0.0.1:104")
    files = []
    for n in (1, 2, 3):
        path = tmp_path / f"ct{n}.dcm"
        realistic_ct(path, patient_id="P1", patient_name="DOE^JOHN", study_uid=STUDY,
                     series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{n}", instance_number=n,
                     rows=32, columns=32)  # fmt: skip
        files.append(str(path))
    scp = dicom_scp.scp(settings, store, port=0)
    scp.start()
    try:
        sent = subprocess.run(
            ["storescu", "-aet", SENDER, "-aec", settings.dicom_ae, "127.0.0.1",
             str(scp.port), *files],
            env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
    finally:
        scp.stop()
        store.engine.dispose()
    assert sent.returncode == 0, sent.stderr
    result = CliRunner().invoke(app, ["study", "timeline", STUDY, "--json"])
    assert result.exit_code == 0, result.output
    workflow = json.loads(result.output)
    assert workflow["indexed_instances"] == 3
    (received,) = workflow["events"]
    assert (received["event"], received["source"], received["instances"]) == (
        "received", "inbox", 3,
    )  # fmt: skip
    table = CliRunner().invoke(app, ["study", "timeline", STUDY], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "received" in table.output
    assert "inbox" in table.output
