"""``pacsync fhir`` as a user runs it, against a real FHIR server (sekmet-fhir on
loopback, tests/fhir_server.py): a connection added with its key (by path or sealed),
``fhir check`` step by step, ``fhir export`` of a thousand patients and then only what
changed since (``--since last``)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from background_jobs import run_queued
from fhir_server import SCOPE, FhirServer, patient, seed_patients, sekmet, write_key
from pacsync import bootstrap
from pacsync.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDED = 1000


@dataclass
class Seeded:
    server: FhirServer
    ids: list[str]
    group: str


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with sekmet(tmp_path_factory.mktemp("sekmet-cli")) as server, server.client() as client:
        ids = seed_patients(client, SEEDED, f"cli{secrets.token_hex(3)}")
        members = [{"entity": {"reference": f"Patient/{i}"}} for i in ids]
        group = client.create(
            {"resourceType": "Group", "type": "person", "actual": True, "member": members}
        )
        yield Seeded(server, ids, group.resource["id"])


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def add(pacsync: Any, server: FhirServer, name: str, key: Path, *extra: str) -> str:
    return ok(
        pacsync(
            "fhir",
            "connection",
            "add",
            name,
            server.base_url,
            "--client-id",
            server.client_id,
            "--key",
            key,
            "--token-url",
            server.token_url,
            "--scope",
            SCOPE,
            *extra,
        )
    )


def test_check_reports_each_step(pacsync: Any, seeded: Seeded) -> None:
    said = add(pacsync, seeded.server, "ehr", seeded.server.key_path)
    assert "FHIR connection ehr" in said

    out = ok(pacsync("fhir", "check", "ehr"))

    steps = {name: _step(out, name) for name in ("capability statement", "authorization", "search")}
    assert all(" ok " in line for line in steps.values()), out
    assert "FHIR 4.0.1" in steps["capability statement"]
    assert f"client {seeded.server.client_id}" in steps["authorization"]
    assert "Patient search answered" in steps["search"]


def _step(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(name))


def test_check_of_a_client_the_server_does_not_know_fails_at_authorization(
    pacsync: Any,
    seeded: Seeded,
    tmp_path: Path,
) -> None:
    stranger = tmp_path / "stranger.pem"
    write_key(stranger)
    add(pacsync, seeded.server, "stranger", stranger, "--seal-key")
    listed = ok(pacsync("fhir", "connection", "list"))
    assert "sealed" in listed

    done = pacsync("fhir", "check", "stranger")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert " ok " in _step(done.stdout, "capability statement")
    auth = _step(done.stdout, "authorization")
    assert "failed" in auth
    assert "PACS-701" in auth
    assert "JWKS" in done.stdout.split(auth, 1)[1].splitlines()[1]  # the hint under it
    assert "skipped" in _step(done.stdout, "search")


def test_export_then_export_what_changed_since(
    pacsync: Any,
    seeded: Seeded,
    tmp_path: Path,
) -> None:
    add(pacsync, seeded.server, "ehr", seeded.server.key_path, "--group", seeded.group)
    into = tmp_path / "export"

    out = ok(pacsync("fhir", "export", "ehr", "--into", into, "--type", "Patient"))

    assert f"{SEEDED} resources" in out
    exported = [
        json.loads(line)["id"]
        for path in sorted(into.glob("Patient.*.ndjson"))
        for line in path.read_text().splitlines()
    ]
    assert sorted(exported) == sorted(seeded.ids)
    manifest = json.loads((into / "manifest.json").read_text())
    assert manifest["output"][0]["count"] == SEEDED

    time.sleep(1.1)  # _since is to the second
    with seeded.server.client() as client:
        changed = client.read("Patient", seeded.ids[0])
        changed.resource["gender"] = "female"
        client.update(changed.resource, if_match=changed.etag)
        newcomer = client.create(patient(f"cli-new-{secrets.token_hex(3)}", "Newcomer"))
        client.update(
            {"resourceType": "Group", "id": seeded.group, "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{i}"}}
                        for i in [*seeded.ids, newcomer.resource["id"]]]},
        )  # fmt: skip

    out = ok(
        pacsync("fhir", "export", "ehr", "--into", into, "--type", "Patient", "--since", "last")
    )

    again = sorted(
        json.loads(line)["id"]
        for path in sorted(into.glob("Patient.*.ndjson"))
        for line in path.read_text().splitlines()
    )
    assert again == sorted([seeded.ids[0], newcomer.resource["id"]])
    assert "2 resources" in out


def test_unknown_connections_and_bad_times_are_coded_errors(
    pacsync: Any,
    seeded: Seeded,
    tmp_path: Path,
) -> None:
    done = pacsync("fhir", "check", "nowhere")
    assert done.returncode == 2
    assert done.stderr.startswith("PACS-104 no FHIR connection 'nowhere'")

    add(pacsync, seeded.server, "ehr", seeded.server.key_path)
    done = pacsync("fhir", "export", "ehr", "--into", tmp_path, "--since", "yesterday-ish")
    assert done.returncode == 2
    assert "PACS-105" in done.stderr
    assert "hint:" in done.stderr


def test_a_background_export_is_a_job_a_worker_runs_with_progress(
    pacsync: Any, seeded: Seeded, tmp_path: Path
) -> None:
    add(pacsync, seeded.server, "ehr", seeded.server.key_path, "--group", seeded.group)
    settings = Settings(_env_file=None, home=Path(pacsync.env["PACSYNC_HOME"]),  # type: ignore[call-arg]
                        database_url=None, secret_key=None)  # fmt: skip
    store = bootstrap.store(settings)
    queued = pacsync("fhir", "export", "ehr", "--into", tmp_path / "bg", "--type", "Patient",
                     "--background")  # fmt: skip
    ended = run_queued(pacsync, store, queued, "fhir-export")
    assert ended.status == "succeeded", ended
    assert ended.progress["entities"]["Patient"]["read"] >= SEEDED
    assert ended.progress["phase"] == "complete"
    assert json.loads((tmp_path / "bg" / "manifest.json").read_text())["output"]
