"""One real site for the dashboard's browser tests, shared by a module: PostgreSQL
databases (the store, the recipe's legacy database and its warehouse), an imaging
archive of generated DICOM files indexed by ``pacsync archive scan``, a
``pacsync serve`` on loopback with its MLLP listener (its admin key read from what it
prints) and a
``pacsync worker`` serving the sync, webhook and message queues — not the archive-scan
queue, so a scan queued there waits, to be cancelled and retried."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.security.secrets import new_key
from processes import KEY, Process, free_port, wait_until_up

TESTS = Path(__file__).resolve().parents[1]
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
        wait_until_up(base, server)
        worker.wait_for(r"worker e2e ready")
        yield Site(hl7_port, base, key, store, cli, folder, server, worker)
    finally:
        worker.stop()
        server.stop()
        store.engine.dispose()
        for url in (legacy, warehouse, store_url):
            postgres.drop(url)
