"""From MLLP to FHIR resources with real processes: ``pacsync hl7 listen`` keeps what
python-hl7's ``mllp_send`` sends, a ``pacsync worker`` serving the message-processing
queue processes it unasked; an unreadable message fails with its code and can be
reprocessed.  The store is the embedded SQLite file or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from pacsync.db.dead_letters import DeadLetterStore
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.messages import MessageStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7"
MLLP_SEND = Path(sys.executable).parent / "mllp_send"
BROKEN = (
    "MSH|^~\\&|PMS|NORTHCLINIC|PACSYNC|HOSP|20261123101500||ADT^A04^ADT_A01|BROKEN-1|P|2.5.1\n"
    "EVN|A04|20261123101500\n"
    "PID|1||PMS00999^^^PMS^MR||Roe^Rita||1970-13-45|F\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    out, err = process.communicate()
    return out + err


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if not line and process.poll() is not None:
            pytest.fail(f"exited {process.returncode} before '{text}': {_stop(process)}")
    pytest.fail(f"no '{text}' within {timeout} s")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, pacsync: Any, postgres: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{Path(pacsync.env['PACSYNC_HOME']) / 'pacsync.db'}"
        return
    url: str = postgres.create()
    pacsync.env["PACSYNC_DATABASE_URL"] = url
    yield url
    postgres.drop(url)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = create_engine(store_url)
    yield made
    made.dispose()


def _wait_until_settled(journal: MessageStore, expected: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = journal.search(state="processed", limit=1000) + journal.search(
            state="failed", limit=1000
        )
        if len(done) >= expected and not journal.pending(None, 1):
            return
        time.sleep(0.3)
    pytest.fail(f"not every message was processed within {timeout} s")


def test_a_worker_processes_what_the_listener_kept(
    pacsync: Any, store_url: str, engine: Engine, tmp_path: Path
) -> None:
    port = _free_port()
    listener = pacsync.start("hl7", "listen", "--port", str(port))
    worker = None
    try:
        _wait_for_line(listener, "MLLP listener")
        worker = pacsync.start("worker", "--id", "hl7-worker", "--queues", "message-processing")
        _wait_for_line(worker, "ready")
        fixtures = sorted(FIXTURES.glob("*.hl7"))
        broken = tmp_path / "broken.hl7"
        broken.write_text(BROKEN)
        for path in [*fixtures, broken]:
            if "|NE|" in path.read_text(encoding="latin-1").split("\n", 1)[0]:
                # MSH-15 NE: no ACK comes back, which mllp_send would wait for forever
                sent = pacsync.run("hl7", "send", f"127.0.0.1:{port}", path)
            else:
                sent = subprocess.run(
                    [str(MLLP_SEND), "--loose", "--port", str(port), "--file", str(path),
                     "127.0.0.1"],
                    capture_output=True, text=True, timeout=60, check=False,
                )  # fmt: skip
            assert sent.returncode == 0, sent.stderr
        journal = MessageStore(engine)
        _wait_until_settled(journal, len(fixtures) + 1)
        processed = journal.search(state="processed", limit=1000)
        assert len(processed) == len(fixtures)
        (failed,) = journal.search(state="failed")
        assert failed.control_id == "BROKEN-1"
        assert failed.error is not None
        assert failed.error["code"] == "PACS-601"
        assert "PID-7" in failed.error["message"]
        counts = FhirResourceStore(engine).counts()
        assert counts["Patient"] >= 5
        assert counts["Observation"] >= 1
        assert counts["DiagnosticReport"] >= 1
        assert {m.patient_id for m in processed} >= {"884512", "PMS00412"}
        _search_the_log_from_the_cli(pacsync, journal)
        letter = _the_dead_letter(pacsync, engine, failed.id, f"hl7:{failed.feed}")
        retried = pacsync.run("dead-letters", "retry", str(letter))
        assert retried.returncode == 0, retried.stdout + retried.stderr
        _wait_for_attempts(journal, "BROKEN-1", 2)
        again = DeadLetterStore(engine).get(letter)
        assert again is not None
        assert (again["status"], again["attempts"]) == ("open", 2)  # the same failure
        again = pacsync.run("hl7", "reprocess")
        assert "1 message(s) queued again" in again.stdout, again.stderr
        _wait_for_attempts(journal, "BROKEN-1", 3)
        assert journal.search(control_id="BROKEN-1")[0].state == "failed"
    finally:
        if worker is not None:
            _stop(worker)
        _stop(listener)


def _the_dead_letter(pacsync: Any, engine: Engine, message_id: int, pipeline: str) -> int:
    """The failed message's dead letter, as ``pacsync dead-letters list`` shows it."""
    (letter,) = DeadLetterStore(engine).find(pipeline=pipeline)
    assert (letter["kind"], letter["record_key"]) == ("hl7", str(message_id))
    listed = pacsync.run("dead-letters", "list", "--pipeline", pipeline)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "PACS-601" in listed.stdout
    assert "ADT^A04" in listed.stdout
    return int(letter["id"])


def _wait_for_attempts(journal: MessageStore, control_id: str, attempts: int) -> None:
    deadline = time.monotonic() + 60
    while journal.search(control_id=control_id)[0].attempts < attempts:
        assert time.monotonic() < deadline, "the reprocessed message was not taken again"
        time.sleep(0.3)


def _search_the_log_from_the_cli(pacsync: Any, journal: MessageStore) -> None:
    """``pacsync hl7 messages`` by patient, type, control id, feed and date."""
    everything = journal.search(limit=1000)

    def shown(*options: str) -> set[str]:
        listed = pacsync.run("hl7", "messages", "--limit", "1000", *options)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        return {m.control_id for m in everything if f" {m.control_id} " in listed.stdout}

    by_patient = {m.control_id for m in everything if m.patient_id == "PMS00412"}
    assert by_patient
    assert shown("--patient", "PMS00412") == by_patient
    assert shown("--patient", "PMS00999") == {"BROKEN-1"}  # failed, still found by patient
    oru = {m.control_id for m in everything if m.kind.startswith("ORU")}
    assert oru
    assert shown("--type", "ORU") == oru
    assert shown("--control-id", "BROKEN-1") == {"BROKEN-1"}
    assert shown("--feed", everything[0].feed) == {m.control_id for m in everything}
    assert shown("--feed", "another") == set()
    received = min(m.received_at for m in everything)
    day = received.date()
    assert shown("--since", day.isoformat()) == {m.control_id for m in everything}
    assert shown("--since", str(day + dt.timedelta(days=1))) == set()
    assert shown("--until", day.isoformat()) == set()
    assert shown("--until", str(day + dt.timedelta(days=1))) == {m.control_id for m in everything}
    refused = pacsync.run("hl7", "messages", "--since", "yesterday")
    assert refused.returncode != 0
    assert "not a date" in refused.stdout + refused.stderr


def test_processed_messages_go_on_to_a_route_in_order(pacsync: Any, tmp_path: Path) -> None:
    """Upstream pacsync routes ADT and ORU to a downstream pacsync (another home) over
    MLLP; the worker does it unasked; the order of arrival is kept."""
    upstream, downstream = _free_port(), _free_port()
    down_home = tmp_path / "downstream-home"
    down_env = {"PACSYNC_HOME": str(down_home), "PACSYNC_HL7_FEED": "downstream"}
    receiver = pacsync.start("hl7", "listen", "--port", str(downstream), env=down_env)
    listener = pacsync.start("hl7", "listen", "--port", str(upstream))
    worker = None
    try:
        _wait_for_line(receiver, "MLLP listener")
        _wait_for_line(listener, "MLLP listener")
        added = pacsync.run(
            "hl7", "route", "add", "ris", f"mllp://127.0.0.1:{downstream}",
            "--type", "ADT^*", "--type", "ORU",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        worker = pacsync.start("worker", "--id", "hl7-router", "--queues", "message-processing")
        _wait_for_line(worker, "ready")
        fixtures = sorted(FIXTURES.glob("*.hl7"))
        sent = pacsync.run("hl7", "send", f"127.0.0.1:{upstream}", *fixtures)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        wanted = [
            p for p in fixtures if p.name.startswith(("adt_", "oru_"))
        ]  # what the route takes, in the order sent
        received = create_engine(f"sqlite:///{down_home / 'pacsync.db'}")
        try:
            journal = MessageStore(received)
            deadline = time.monotonic() + 90
            while len(journal.search(limit=100)) < len(wanted):
                assert time.monotonic() < deadline, "the route did not deliver everything"
                time.sleep(0.3)
            got = [m.control_id for m in reversed(journal.search(limit=100))]
        finally:
            received.dispose()
        expected = [path.read_text(encoding="latin-1").split("|")[9] for path in wanted]
        assert got == expected
        listed = pacsync.run("hl7", "route", "list")
        assert f"127.0.0.1:{downstream}" in listed.stdout
    finally:
        if worker is not None:
            _stop(worker)
        _stop(listener)
        _stop(receiver)
