"""Faults the job layer must ride out, produced for real on loopback: a destination that
refuses its first connections then works, a source whose circuit opens so that its
fallback is used, and a terminal failure parked as a dead letter."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from .assessment import Deployment, count, run_summary
from .test_error_codes import closed_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class FlakyProxy:
    """A TCP proxy to PostgreSQL that drops its first ``refuse`` connections, then relays."""

    def __init__(self, target_port: int, refuse: int) -> None:
        self.target_port, self.refuse = target_port, refuse
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.closing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.refuse:
                client.close()  # the server "went away" before the handshake
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.closing = True
        self.listener.close()


@pytest.fixture
def legacy(pg_url: str, recipe: Any) -> str:
    recipe.generate.generate(pg_url, scale=0.05, seed=3)
    return pg_url


@pytest.fixture
def flaky_target(postgres: Any) -> Iterator[tuple[str, FlakyProxy]]:
    url: str = postgres.create()
    real = make_url(url)
    proxy = FlakyProxy(real.port or 5432, refuse=2)
    yield real.set(port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.close()
    postgres.drop(url)


def test_a_destination_refusing_its_first_connections_is_retried_until_it_works(
    pacsync: Any, recipe: Any, legacy: str, flaky_target: tuple[str, FlakyProxy]
) -> None:
    target, proxy = flaky_target
    pacsync.env.update({"LEGACY_DB_URL": legacy, "WAREHOUSE_URL": target})
    done = pacsync("run", recipe.pipeline, "--quiet", "--full", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "retrying in" in done.stdout
    status, counts = run_summary(done.stdout)
    assert status == "succeeded"
    (job,) = Deployment(recipe.pipeline, pacsync.env).jobs()
    assert job.attempts > 1
    assert proxy.accepted > proxy.refuse
    assert count(target, "properties") == counts["properties"]["inserted"] > 0


def _with_fallback(recipe: Any, folder: Path, replica: str) -> Path:
    """The recipe's pipeline with a read replica as the legacy connection's fallback."""
    spec = yaml.safe_load(recipe.pipeline.read_text())
    spec["connections"]["legacy"]["fallback"] = "replica"
    spec["connections"]["replica"] = {"url": replica}
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_open_circuit_sends_the_job_to_the_fallback_connection(
    pacsync: Any, recipe: Any, legacy: str, tmp_path: Path
) -> None:
    dead = make_url(legacy).set(port=closed_port()).render_as_string(hide_password=False)
    pipeline = _with_fallback(recipe, tmp_path, replica=legacy)
    warehouse = tmp_path / "warehouse.db"
    pacsync.env.update(
        {
            "LEGACY_DB_URL": dead,
            "WAREHOUSE_URL": f"sqlite:///{warehouse}",
            "PACSYNC_CIRCUIT_FAILURES": "2",
        }
    )
    done = pacsync("run", pipeline, "--quiet", "--full", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("retrying in") == 2  # two failures opened the circuit
    status, _ = run_summary(done.stdout)
    assert status == "succeeded"
    shown = pacsync("status")
    assert shown.returncode == 0, shown.stderr
    legacy_line = next(line for line in shown.stdout.splitlines() if "legacy" in line)
    assert "open" in legacy_line
    assert count(f"sqlite:///{warehouse}", "properties") > 0


def test_a_terminal_failure_is_parked_once_and_can_be_retried(
    pacsync: Any, recipe: Any, pg_url: str, tmp_path: Path
) -> None:
    pacsync.env.update(
        {"LEGACY_DB_URL": pg_url, "WAREHOUSE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    )  # reachable, but the legacy tables are missing: PACS-003, not retried
    done = pacsync("run", recipe.pipeline, "--quiet")
    assert done.returncode != 0
    deployment = Deployment(recipe.pipeline, pacsync.env)
    (job,) = deployment.jobs()
    assert (job.status, job.error_code, job.attempts) == ("failed", "PACS-003", 1)
    (letter,) = deployment.letters()
    assert (letter["kind"], letter["record_key"], letter["status"]) == ("job", job.id, "open")
    assert letter["payload"]["pipeline"] == "property-assessment"

    recipe.generate.generate(pg_url, scale=0.02, seed=5)  # the operator fixes the cause
    again = pacsync("dead-letters", "retry", str(letter["id"]))
    assert again.returncode == 0, again.stdout + again.stderr
    (letter,) = deployment.letters(status=None)
    assert letter["status"] == "retried"
    queued = [j for j in deployment.jobs() if j.id != job.id]
    assert [(j.status, j.trigger) for j in queued] == [("queued", "retry")]
