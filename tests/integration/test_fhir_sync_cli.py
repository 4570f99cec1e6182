"""``pacsync fhir sync`` and ``pacsync conflicts`` as a user runs them, against a real
FHIR server (sekmet-fhir on loopback, tests/fhir_server.py): a local patient synced to
the server, a change on both sides left as a conflict, decided (and audited) through
``pacsync conflicts resolve``, and written by the next sync."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from background_jobs import run_queued
from fhir_server import SCOPE, FhirServer, sekmet
from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.db.fhir_resources import FhirResourceStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet(tmp_path_factory.mktemp("sekmet-sync-cli")) as running:
        yield running


def connect(pacsync: Any, server: FhirServer) -> bootstrap.Store:
    """Add connection ``ehr`` to the CLI's store; that store, opened here too."""
    ok(pacsync("fhir", "connection", "add", "ehr", server.base_url, "--client-id",
               server.client_id, "--key", server.key_path, "--token-url", server.token_url,
               "--scope", SCOPE))  # fmt: skip
    settings = Settings(_env_file=None, home=Path(pacsync.env["PACSYNC_HOME"]),
                        database_url=None, secret_key=None)  # fmt: skip
    return bootstrap.store(settings)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def row(out: str, first: str) -> list[str]:
    """The cells of the table row starting with ``first``."""
    line = next(x for x in out.splitlines() if re.match(rf"\W*{re.escape(first)}\W", x))
    return [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]


def test_sync_leaves_a_conflict_that_is_decided_audited_and_then_written(
    pacsync: Any, server: FhirServer
) -> None:
    store = connect(pacsync, server)
    local = FhirResourceStore(store.engine)
    pid = f"cli-sync-{secrets.token_hex(3)}"
    local.save({"resourceType": "Patient", "id": pid, "gender": "female"})
    sync = ("fhir", "sync", "ehr", "--patient", pid, "--type", "Patient")

    out = ok(pacsync(*sync))
    assert row(out, "Patient")[1:3] == ["0", "1"]  # pulled 0, pushed 1
    with server.client() as client:
        held = client.read("Patient", pid)
        assert held.resource["gender"] == "female"
        client.update({**held.resource, "gender": "unknown"}, if_match=held.etag)
    current = local.current("Patient", pid)
    assert current is not None
    local.save({**current, "gender": "other"})

    out = ok(pacsync(*sync))
    assert row(out, "Patient")[5] == "1"  # one conflict opened
    conflict_id = store.conflicts.list(pipeline="fhir:ehr")[0][0].id
    listed = ok(pacsync("conflicts", "list", "--pipeline", "fhir:ehr"))
    assert row(listed, str(conflict_id)) == [
        str(conflict_id), "fhir:ehr", "Patient", pid, "gender", "open", "-"]  # fmt: skip

    said = ok(pacsync("conflicts", "resolve", str(conflict_id), "--strategy", "use_remote",
                      "--reason", "the EHR is right"))  # fmt: skip
    assert f"conflict {conflict_id} resolved (use_remote)" in said
    audited = store.audit.recent(action="conflict.resolve", limit=5)
    assert [(a["target"], a["outcome"]) for a in audited] == [(str(conflict_id), "ok")]

    out = ok(pacsync(*sync))
    assert row(out, "Patient")[1] == "1"  # the decision pulled in
    decided = local.current("Patient", pid)
    assert decided is not None
    assert decided["gender"] == "unknown"
    again = pacsync("conflicts", "resolve", str(conflict_id), "--strategy", "use_local")
    assert again.returncode != 0
    assert "already resolved" in again.stdout + again.stderr


def test_a_background_sync_is_a_job_a_worker_runs(pacsync: Any, server: FhirServer) -> None:
    store = connect(pacsync, server)
    pid = f"bg-sync-{secrets.token_hex(3)}"
    FhirResourceStore(store.engine).save({"resourceType": "Patient", "id": pid})
    queued = pacsync("fhir", "sync", "ehr", "--patient", pid, "--type", "Patient",
                     "--background")  # fmt: skip
    ended = run_queued(pacsync, store, queued, "fhir-sync")
    assert ended.status == "succeeded", ended
    assert ended.progress["entities"]["Patient"]["pushed"] == 1
    with server.client() as client:
        assert client.read("Patient", pid).resource["id"] == pid
