"""The fault test of HL7 intake: ``kill -9`` the listener while python-hl7's ``mllp_send``
streams 10,000 messages, restart it, send again what got no ACK: every message that got
AA is stored exactly once, and every message is stored.  On SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from pacsync.connectors.hl7.mllp import Framer, frame
from pacsync.connectors.hl7.sender import read_ack

from .mllp_peers import MLLP_SEND, Listener, adt, start_listener

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = 10_000
SENDERS = 4  # mllp_send processes, each with its share on its own connection
KILL_AFTER = 2_500  # ACKs seen before the kill


class Stream:
    """One ``mllp_send`` process; the control ids answered AA, read as they come."""

    def __init__(self, port: int, path: Path) -> None:
        self.process = subprocess.Popen(
            [str(MLLP_SEND), "-p", str(port), "-f", str(path), "127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.accepted: list[str] = []
        self.other: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        framer = Framer(1 << 20)
        while data := self.process.stdout.read1(65536):
            payloads, _ = framer.feed(data)
            for payload in payloads:
                ack = read_ack(payload)
                (self.accepted if ack.code == "AA" else self.other).append(ack.control_id)

    def finish(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=30)
        for pipe in (self.process.stdout, self.process.stderr):
            assert pipe is not None
            pipe.close()
        return code


def send_all(port: int, folder: Path, control_ids: list[str], name: str) -> list[Stream]:
    streams = []
    for number in range(SENDERS):
        share = control_ids[number::SENDERS]
        path = folder / f"{name}-{number}.mllp"
        path.write_bytes(b"".join(frame(payload(c)) for c in share))
        streams.append(Stream(port, path))
    return streams


def payload(control_id: str) -> bytes:
    return adt(control_id, body=f"NTE|1||message {control_id}\r".encode())


def kept(listener: Listener) -> list[tuple[str, bytes, str]]:
    url = listener.env.get("PACSYNC_DATABASE_URL")
    if url is None:
        databases = list(Path(listener.env["PACSYNC_HOME"]).rglob("*.db"))
        assert len(databases) == 1, databases
        url = f"sqlite:///{databases[0]}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT control_id, payload, state FROM hl7_messages"))
            return [(c, bytes(p), s) for c, p, s in rows]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The listener's store: SQLite under PACSYNC_HOME, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {}
    return {"PACSYNC_DATABASE_URL": request.getfixturevalue("pg_url")}


def test_every_acknowledged_message_survives_kill_9_and_is_kept_once(
    pacsync: Any, tmp_path: Path, store_env: dict[str, str]
) -> None:
    started = time.monotonic()
    control_ids = [f"K{n:05d}" for n in range(MESSAGES)]
    first = start_listener(pacsync, store_env)
    streams = send_all(first.port, tmp_path, control_ids, "first")
    deadline = time.monotonic() + 60
    while sum(len(s.accepted) for s in streams) < KILL_AFTER:
        assert time.monotonic() < deadline, "the listener is too slow to reach the kill point"
        assert all(s.process.poll() is None for s in streams), "a sender ended early"
        time.sleep(0.005)
    first.kill()  # SIGKILL, mid-stream
    for stream in streams:
        assert stream.finish() != 0  # each sender lost its connection
    acknowledged = {c for s in streams for c in s.accepted}
    assert not [c for s in streams for c in s.other]
    assert KILL_AFTER <= len(acknowledged) < MESSAGES

    second = start_listener(pacsync, store_env)  # the same store
    try:
        after_crash = Counter(c for c, _, _ in kept(second))
        assert acknowledged <= set(after_crash)  # nothing acknowledged was lost
        assert max(after_crash.values()) == 1
        missing = [c for c in control_ids if c not in acknowledged]
        again = send_all(second.port, tmp_path, missing, "again")
        for stream in again:
            assert stream.finish() == 0
        resent = [c for s in again for c in s.accepted]
        assert sorted(resent) == sorted(missing)  # all answered AA, the kept ones as duplicates
        assert not [c for s in again for c in s.other]
        rows = kept(second)
    finally:
        output = second.stop()
    assert "Traceback" not in output
    counts = Counter(c for c, _, _ in rows)
    assert set(counts) == set(control_ids)  # every message is stored
    assert set(counts.values()) == {1}  # and exactly once
    # byte for byte as sent (mllp_send strips the last segment's CR from each block)
    assert all(p == payload(c).rstrip(b"\r") for c, p, _ in rows)
    assert {s for _, _, s in rows} == {"received"}
    assert time.monotonic() - started < 60
