"""Background ``pacsync`` processes for the tests that need real ones (``pacsync serve``,
``pacsync worker``): what they print is collected as they print it, a line can be
waited for, and they are stopped with SIGTERM (killed after a minute)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

KEY = re.compile(r"ADMIN API KEY: (psk_\S+)")  # printed once by the first `pacsync serve`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    """A background ``pacsync`` process and everything it printed."""

    popen: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for pipe, lines in ((self.popen.stdout, self.out), (self.popen.stderr, self.err)):
            reader = threading.Thread(target=self._drain, args=(pipe, lines), daemon=True)
            reader.start()
            self.readers.append(reader)

    @staticmethod
    def _drain(pipe: Any, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.out):
                if found := re.search(pattern, line):
                    return found
            if self.popen.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} from pacsync:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return "".join(self.out) + "\n--- stderr ---\n" + "".join(self.err)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for reader in self.readers:
            reader.join(timeout=10)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def wait_until_up(base: str, server: Process, timeout: float = 60) -> None:
    """Until ``base``'s ``/health`` answers 200; fails when the server exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"pacsync serve did not come up:\n{server.output()}")
        time.sleep(0.1)
