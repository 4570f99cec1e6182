"""``pacsync hl7 listen`` as a real process, and the peers the HL7 tests talk to it with."""

from __future__ import annotations

import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pacsync.connectors.hl7.mllp import Framer, frame
from pacsync.connectors.hl7.sender import Ack, read_ack

MLLP_SEND = Path(sys.executable).parent / "mllp_send"
_LISTENING = re.compile(r"MLLP listener '[^']*' on [\d.]+:(\d+)")


def adt(
    control_id: str, *, sender: str = "PMS|CLINIC", body: bytes = b"", extra: str = ""
) -> bytes:
    """An ADT^A08 with CR segment ends (``extra``: MSH fields after MSH-12)."""
    msh = f"MSH|^~\\&|{sender}|PACSYNC|HOSP|20260101120000||ADT^A08^ADT_A01|{control_id}|P|2.5.1"
    return (
        (msh + extra + "\r").encode()
        + b"EVN|A08|20260101120000\rPID|1||42^^^HOSP^MR||Doe^Jane\r"
        + body
    )


@dataclass
class Listener:
    process: subprocess.Popen[str]
    port: int
    env: dict[str, str]
    banner: str  # the line saying where it listens

    def stop(self) -> str:
        """Stop it (SIGTERM) and return what it printed."""
        if self.process.poll() is None:
            self.process.terminate()
        out, err = self.process.communicate(timeout=30)
        return out + err

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no clean-up of any kind
        self.process.communicate(timeout=30)


def start_listener(
    pacsync: Any, env: Mapping[str, str] | None = None, *options: str
) -> Listener:
    """``pacsync hl7 listen --port 0`` (and ``options``); once it says where it listens."""
    process = pacsync.start("hl7", "listen", "--port", "0", *options, env=env)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    seen = ""
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                continue
            line = process.stdout.readline()
            if not line:
                break
            seen += line
            found = _LISTENING.search(line)
            if found:
                return Listener(process, int(found.group(1)), dict(pacsync.environment(env)), line)
    finally:
        selector.close()
    process.kill()
    out, err = process.communicate(timeout=30)
    pytest.fail(f"pacsync hl7 listen did not start:\n{seen}{out}{err}")


class Connection:
    """A raw MLLP connection: write any bytes, read the answers that come back."""

    def __init__(self, port: int, timeout: float = 20.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.framer = Framer(1 << 20)
        self.pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def acks(self, count: int) -> list[Ack]:
        while len(self.pending) < count:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed after {len(self.pending)} of {count} answers")
            payloads, _ = self.framer.feed(data)
            self.pending += payloads
        answers, self.pending = self.pending[:count], self.pending[count:]
        return [read_ack(a) for a in answers]

    def exchange(self, payload: bytes) -> Ack:
        self.write(frame(payload))
        return self.acks(1)[0]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def mllp_send(port: int, path: Path, *, loose: bool = False, timeout: float = 120) -> list[Ack]:
    """python-hl7's ``mllp_send`` command with ``path``; the ACKs it printed."""
    if not MLLP_SEND.is_file():
        pytest.fail(f"no mllp_send at {MLLP_SEND}: the hl7 package is not installed in the venv")
    command = [str(MLLP_SEND), "-p", str(port), "-f", str(path), "127.0.0.1"]
    if loose:
        command.insert(1, "--loose")
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return printed_acks(done.stdout)


def printed_acks(stdout: bytes) -> list[Ack]:
    """The ACKs mllp_send printed (each one an MLLP block, a newline after it)."""
    payloads, _ = Framer(1 << 20).feed(stdout)
    return [read_ack(p) for p in payloads]
