"""A real FHIR R4 server on loopback for the FHIR integration tests: sekmet-fhir 0.1.1
(pinned in the dev dependency group, so ``uv sync`` installs it), started as its own
process with ``sekmet serve -c settings.yaml``.

Its settings, all in a temp folder:

* ``host: 127.0.0.1`` (it binds 0.0.0.0 otherwise) and a free port; ``base_url`` says
  that address, since the server derives its token URL and next links from it;
* SQLite storage under the folder (``data_dir``), Bulk files there too;
* SMART Backend Services only (``server_auth.types: [smart]``) with one registered
  client, ``pacsync-it``, whose public key is given as a JWKS; the private key is
  ``client.pem`` in the folder.  Scopes ``system/*.*``; tokens live 300 s;
* the simulator (which reacts to orders with results) off, the traffic log off.

Waits are bounded (30 s to answer /metadata, 10 s to stop).  A missing ``sekmet``
script or a server that does not come up is :func:`availability.unavailable`: a
failure under CI=true, a skip elsewhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import availability
from pacsync.connectors.fhir.auth import ClientAssertion, TokenSource, key_from_file, public_jwks
from pacsync.connectors.fhir.client import FhirClient
from pacsync.jobs.retry import RetryPolicy

SEKMET = Path(sys.executable).parent / "sekmet"
LOOPBACK = "127.0.0.1"
CLIENT_ID = "pacsync-it"
SCOPE = "system/*.*"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def write_key(path: Path) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return key


@dataclass
class FhirServer:
    port: int
    folder: Path
    key_path: Path
    client_id: str = CLIENT_ID

    @property
    def root(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.root}/auth/token"

    def tokens(self, http: httpx.Client, key_path: Path | None = None) -> TokenSource:
        assertion = ClientAssertion(
            self.client_id, self.token_url, key_from_file(key_path or self.key_path)
        )
        return TokenSource(assertion, SCOPE, http)

    def client(self, *, key_path: Path | None = None, page_size: int = 200) -> FhirClient:
        """A pacsync FHIR client authenticated as the registered backend client."""
        http = httpx.Client(timeout=60)
        return FhirClient(
            self.base_url,
            http,
            tokens=self.tokens(http, key_path),
            retry=RetryPolicy(attempts=2, base_delay=0.2),
            connection="sekmet",
            page_size=page_size,
        )

    def log(self) -> str:
        path = self.folder / "sekmet.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def settings(server: FhirServer, public_key: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": LOOPBACK,
        "port": server.port,
        "base_url": server.base_url,
        "data_dir": str(server.folder / "data"),
        "own_private_key_path": str(server.folder / "data" / "sekmet.pem"),
        "log_inbound": False,
        "simulator": {"enabled": False, "delay_seconds": 0},
        "validation": {"inbound": "strict"},
        "server_auth": {
            "types": ["smart"],
            "token_lifetime": 300,
            "enforce_scopes": True,
            "smart_clients": [{"client_id": server.client_id, "jwks": public_key, "scopes": SCOPE}],
        },
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def sekmet(folder: Path) -> Iterator[FhirServer]:
    """The server running with its settings under ``folder``; stopped at the end."""
    if not SEKMET.is_file():
        availability.unavailable(f"no sekmet script at {SEKMET}: run `uv sync` (dev group)")
    folder.mkdir(parents=True, exist_ok=True)
    server = FhirServer(free_port(), folder, folder / "client.pem")
    key = write_key(server.key_path)
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump(settings(server, public_jwks(key, kid="it"))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    with (folder / "sekmet.log").open("wb") as log:
        process = subprocess.Popen(
            [str(SEKMET), "serve", "-c", str(config)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_up(server, process)
        _assert_loopback_only(process.pid)
        yield server
    finally:
        _stop(process)


def _wait_up(server: FhirServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            availability.unavailable(
                f"sekmet exited with {process.returncode} at start: {server.log()}"
            )
        try:
            answer = httpx.get(f"{server.base_url}/metadata", timeout=1.0)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            availability.unavailable(
                f"sekmet did not answer /metadata within {START_TIMEOUT_S:.0f} s: {server.log()}"
            )
        time.sleep(0.1)


def _assert_loopback_only(pid: int) -> None:
    """The server listens on 127.0.0.1 only (sekmet binds 0.0.0.0 unless told)."""
    listening = {
        c.laddr.ip
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {LOOPBACK}, f"sekmet listens on {listening}"


# -- data ------------------------------------------------------------------------------

MRN = "urn:oid:2.16.840.1.113883.3.9999.1"


def patient(mrn: str, family: str, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family, "given": ["Test"]}],
        "gender": "unknown",
        "birthDate": "1970-01-01",
        **more,
    }


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{i:08d}-0000-4000-8000-000000000000",
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
            for i, r in enumerate(resources)
        ],
    }


def created_ids(response: dict[str, Any]) -> list[str]:
    """The ids of the resources a transaction created (from each entry's location)."""
    found = []
    for entry in response.get("entry") or []:
        location = (entry.get("response") or {}).get("location", "")
        parts = location.split("/")
        found.append(parts[parts.index("_history") - 1] if "_history" in parts else parts[-1])
    return found


def seed_patients(client: FhirClient, count: int, prefix: str) -> list[str]:
    """``count`` patients with MRNs ``{prefix}-00001``… in transactions of 500."""
    ids: list[str] = []
    for start in range(0, count, 500):
        batch = [
            patient(f"{prefix}-{n:05d}", f"Seed{n:05d}")
            for n in range(start + 1, min(count, start + 500) + 1)
        ]
        ids += created_ids(client.transaction(transaction(batch)))
    return ids


def dump(value: Any) -> str:
    return json.dumps(value, indent=1)[:2000]
