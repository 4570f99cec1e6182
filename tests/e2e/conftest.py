"""One real site for the dashboard's browser tests, shared by a module: PostgreSQL
databases (the store, the recipe's legacy database and its warehouse), an imaging
archive of generated DICOM files indexed by ``pacsync archive scan``, a
``pacsync serve`` on loopback with its MLLP listener (its admin key read from what it
prints) and a
``pacsync worker`` serving the sync, webhook and message queues — not the archive-scan
queue, so a scan queued there waits, to be cancelled and retried."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.security.secrets import new_key

TESTS = Path(__file__).resolve().parents[1]
KEY = re.compile(r"ADMIN API KEY: (psk_\S+)")
PATIENTS = (  # (id, name, study uid, images)
    ("E2E-1001", "DOE^JANE", "1.2.826.0.1.3680043.10.511.1", 6),
    ("E2E-1002", "DOE^JOHN", "1.2.826.0.1.3680043.10.511.2", 3),
    ("E2E-2001", "SMITH^ANNA", "1.2.826.0.1.3680043.10.511.3", 2),
)


def root_conftest(config: pytest.Config) -> ModuleType:
    wanted = TESTS / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "/").resolve() == wanted:
            assert isinstance(plugin, ModuleType)
            return plugin
    raise AssertionError("tests/conftest.py is not loaded")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    """A background ``pacsync`` process and what it printed."""

    popen: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for pipe, lines in ((self.popen.stdout, self.out), (self.popen.stderr, self.err)):
            threading.Thread(target=self._drain, args=(pipe, lines), daemon=True).start()

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
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


@dataclass
class Site:
    hl7_port: int
    base: str
    admin_key: str
    store: bootstrap.Store
    cli: Any
    folder: Path
    server: Process
    worker: Process

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {token or self.admin_key}"},
            timeout=30,
        )


def _archive(folder: Path) -> None:
    for patient_id, name, study_uid, images in PATIENTS:
        series_uid = f"{study_uid}.1"
        target = folder / patient_id
        target.mkdir(parents=True)
        for number in range(1, images + 1):
            realistic_ct(
                target / f"IM{number:04d}.dcm",
                patient_id=patient_id,
                patient_name=name,
                study_uid=study_uid,
                series_uid=series_uid,
                sop_uid=f"{series_uid}.{number}",
                instance_number=number,
                rows=128,
                columns=128,
            )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: Any,
    recipe: Any,
    bytecode_cache: Path,
) -> Iterator[Site]:
    conftest = root_conftest(request.config)
    folder = tmp_path_factory.mktemp("dashboard")
    legacy, warehouse, store_url = postgres.create(), postgres.create(), postgres.create()
    recipe.generate.generate(legacy, scale=0.01, seed=7)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PACSYNC_") and k not in conftest._INHERITED_NOT
    }
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    home = folder / "pacsync-home"
    secret = new_key()
    hl7_port = free_port()
    env.update(
        {
            "PACSYNC_HOME": str(home),
            "PACSYNC_DATABASE_URL": store_url,
            "PACSYNC_SECRET_KEY": secret,
            "LEGACY_DB_URL": legacy,
            "WAREHOUSE_URL": warehouse,
            "PACSYNC_HL7_PORT": str(hl7_port),
            "COLUMNS": "200",
            "PYTHONPYCACHEPREFIX": str(bytecode_cache),
        }
    )
    cli = conftest.Cli(env=env, cwd=folder)
    (home / "pipelines").mkdir(parents=True)
    shutil.copyfile(recipe.pipeline, home / "pipelines" / "property-assessment.yaml")
    _archive(folder / "dicom")
    _ok(cli("archive", "add", "ct-nas", "dicom", str(folder / "dicom"), "--rescan-minutes", "0"))
    _ok(cli("archive", "scan", "ct-nas", "--quiet"))

    port = free_port()
    server = Process(cli.start("serve", "--port", str(port), "--hl7"))
    worker = Process(
        cli.start(
            *("worker", "--id", "e2e"),
            *("--queues", "sync-jobs", "--queues", "webhook-delivery"),
            *("--queues", "message-processing"),
        )
    )
    store = bootstrap.store(Settings(_env_file=None, home=home, database_url=store_url,
                                     secret_key=secret))  # fmt: skip
    try:
        key = server.wait_for(KEY.pattern).group(1)
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, server)
        worker.wait_for(r"worker e2e ready")
        yield Site(hl7_port, base, key, store, cli, folder, server, worker)
    finally:
        worker.stop()
        server.stop()
        store.engine.dispose()
        for url in (legacy, warehouse, store_url):
            postgres.drop(url)


def _wait_until_up(base: str, server: Process) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"pacsync serve did not come up:\n{server.output()}")
        time.sleep(0.1)
