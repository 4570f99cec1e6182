"""A pipeline whose destination is an MLLP receiver: each source record is sent as an
HL7 message (a real ``pacsync hl7 listen`` receives them), again only when it changed;
with the receiver down the run fails with PACS-651 and the next run sends what was
not acknowledged, each message once."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from pacsync.db.messages import MessageStore

PIPELINE = """
version: 1
name: pms-outbound
connections:
  pms: {url: "sqlite:///%(source)s"}
  ris: {url: "mllp://127.0.0.1:%(port)d", connect_timeout: 2}
source: {connection: pms}
destination: {connection: ris}
retry: {attempts: 1}
entities:
  patients:
    source: {table: patient, key: [id]}
    fields:
      id: {from: id, type: integer}
      family: {from: last, transforms: [trim]}
      given: {from: first}
      birth_date: {from: dob, type: date}
    target:
      message: |
        MSH|^~\\&|PACSYNC|COUNTY|RIS|HOSP|{now}||ADT^A08^ADT_A01|{control_id}|P|2.5.1
        EVN|A08|{now}
        PID|1||{id}^^^PMS^MR||{family}^{given}||{birth_date}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _receiver(pacsync: Any, home: Path, port: int) -> subprocess.Popen[str]:
    process: subprocess.Popen[str] = pacsync.start(
        "hl7", "listen", "--port", str(port), env={"PACSYNC_HOME": str(home),
                                                   "PACSYNC_HL7_ACCEPT": "ADT^*"},
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while "MLLP listener" not in process.stdout.readline():
        assert process.poll() is None, "the receiver exited"
        assert time.monotonic() < deadline, "the receiver did not start"
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.communicate()


def _received(home: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{home / 'pacsync.db'}")
    try:
        rows = MessageStore(engine).search(limit=1000)
        return [r.control_id for r in reversed(rows)]
    finally:
        engine.dispose()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "pms.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE patient (id INTEGER PRIMARY KEY, last TEXT, first TEXT, "
                     "dob TEXT)")  # fmt: skip
        conn.executemany(
            "INSERT INTO patient VALUES (?, ?, ?, ?)",
            [(i, f" Doe{i} ", "John", f"1970-01-{1 + i % 28:02d}") for i in range(1, 41)],
        )
    return path


def _outbound(source: Path, tmp_path: Path) -> tuple[Path, int, Path]:
    """The pipeline file, the receiver's port and its home."""
    port, home = _free_port(), tmp_path / "ris-home"
    pipeline = tmp_path / "outbound.yaml"
    pipeline.write_text(PIPELINE % {"source": source, "port": port})
    return pipeline, port, home


def test_records_are_sent_once_and_again_only_when_changed(
    pacsync: Any, source: Path, tmp_path: Path
) -> None:
    pipeline, port, home = _outbound(source, tmp_path)
    receiver = _receiver(pacsync, home, port)
    try:
        first = pacsync.run("run", pipeline, "--quiet")
        assert first.returncode == 0, first.stdout + first.stderr
        assert len(_received(home)) == 40
        again = pacsync.run("run", pipeline, "--quiet")
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(_received(home)) == 40
        with sqlite3.connect(source) as conn:
            conn.execute("UPDATE patient SET first = 'Jane' WHERE id = 7")
        changed = pacsync.run("run", pipeline, "--quiet")
        assert changed.returncode == 0, changed.stdout + changed.stderr
        received = _received(home)
        assert len(received) == 41
        engine = create_engine(f"sqlite:///{home / 'pacsync.db'}")
        try:
            journal = MessageStore(engine)
            newest = journal.search(limit=1)[0]
            found = journal.payload(newest.id)
            assert found is not None
            assert b"PID|1||7^^^PMS^MR||Doe7^Jane||19700108" in found[0]
        finally:
            engine.dispose()
    finally:
        _stop(receiver)


def test_a_receiver_down_fails_the_run_and_the_next_run_sends_the_rest(
    pacsync: Any, source: Path, tmp_path: Path
) -> None:
    pipeline, port, home = _outbound(source, tmp_path)
    down = pacsync.run("run", pipeline, "--quiet", timeout=180)
    assert down.returncode != 0
    assert "PACS-651" in down.stdout + down.stderr
    receiver = _receiver(pacsync, home, port)
    try:
        up = pacsync.run("run", pipeline, "--quiet")
        assert up.returncode == 0, up.stdout + up.stderr
        received = _received(home)
        assert len(received) == 40
        assert len(set(received)) == 40
    finally:
        _stop(receiver)
