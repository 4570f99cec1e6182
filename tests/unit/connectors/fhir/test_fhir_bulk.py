"""Bulk $export against a scripted server: kick-off, polling with Retry-After and
X-Progress, the manifest, NDJSON files streamed and checked, failures midway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsync.connectors.fhir.bulk import MANIFEST, BulkExport, ExportRequest
from pacsync.connectors.fhir.client import FhirClient
from pacsync.errors import FhirBulkExportFailed, FhirProtocolError, FhirServerUnavailable
from pacsync.jobs.retry import RetryPolicy

BASE = "https://ehr.example.org/fhir"
STATUS = f"{BASE}/bulk-status/77"


def ndjson(rtype: str, count: int) -> bytes:
    return b"".join(
        json.dumps({"resourceType": rtype, "id": str(i)}).encode() + b"\n" for i in range(count)
    )


class Server:
    """Kick-off 202, then ``running`` polls of 202, then the manifest; files by URL."""

    def __init__(self, running: int = 2, retry_after: str | None = "3") -> None:
        self.running = running
        self.retry_after = retry_after
        self.requests: list[httpx.Request] = []
        self.files = {
            f"{BASE}/files/p1": ndjson("Patient", 3),
            f"{BASE}/files/p2": ndjson("Patient", 2),
            f"{BASE}/files/o1": ndjson("Observation", 4),
        }
        self.status_answer: httpx.Response | None = None
        self.deleted = False

    def manifest(self) -> dict[str, Any]:
        return {
            "transactionTime": "2026-11-23T12:00:00Z",
            "request": f"{BASE}/$export",
            "requiresAccessToken": True,
            "output": [
                {"type": "Patient", "url": f"{BASE}/files/p1"},
                {"type": "Patient", "url": f"{BASE}/files/p2"},
                {"type": "Observation", "url": f"{BASE}/files/o1"},
            ],
            "error": [],
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if "$export" in url:
            assert request.headers["Prefer"] == "respond-async"
            return httpx.Response(202, headers={"Content-Location": STATUS})
        if url == STATUS and request.method == "DELETE":
            self.deleted = True
            return httpx.Response(202)
        if url == STATUS:
            if self.status_answer is not None:
                return self.status_answer
            if self.running:
                self.running -= 1
                headers = {"X-Progress": f"{self.running} to go"}
                if self.retry_after:
                    headers["Retry-After"] = self.retry_after
                return httpx.Response(202, headers=headers)
            return httpx.Response(200, json=self.manifest())
        if url in self.files:
            return httpx.Response(200, content=self.files[url])
        return httpx.Response(404)


def exporter(server: Server, **kwargs: Any) -> tuple[BulkExport, list[float], list[str]]:
    slept: list[float] = []
    said: list[str] = []
    client = FhirClient(
        BASE,
        httpx.Client(transport=httpx.MockTransport(server)),
        retry=RetryPolicy(attempts=1),
        sleep=slept.append,
    )
    return BulkExport(client, progress=said.append, **kwargs), slept, said


def test_an_export_is_kicked_off_polled_and_downloaded(tmp_path: Path) -> None:
    server = Server(running=2, retry_after="3")
    bulk, slept, said = exporter(server)
    since = __import__("datetime").datetime(2026, 11, 1, tzinfo=__import__("datetime").UTC)

    result = bulk.run(ExportRequest(types=("Patient", "Observation"), since=since), tmp_path)

    kickoff = server.requests[0].url.params
    assert kickoff["_type"] == "Patient,Observation"
    assert kickoff["_since"] == "2026-11-01T00:00:00Z"
    assert slept == [3.0, 3.0]  # Retry-After honoured between polls
    assert result.polls == 3
    assert result.counts() == {"Patient": 5, "Observation": 4}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Observation.001.ndjson", "Patient.001.ndjson", "Patient.002.ndjson", MANIFEST,
    ]  # fmt: skip
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["transactionTime"] == "2026-11-23T12:00:00Z"
    assert [o["count"] for o in manifest["output"]] == [3, 2, 4]
    assert any("to go" in line for line in said)
    assert server.deleted


def test_polling_waits_within_bounds_when_retry_after_is_missing_or_huge(tmp_path: Path) -> None:
    bulk, slept, _ = exporter(Server(running=1, retry_after=None), min_poll_s=0.25)
    bulk.run(ExportRequest(), tmp_path)
    assert slept == [0.25]

    bulk, slept, _ = exporter(Server(running=1, retry_after="9999"), max_poll_s=60)
    bulk.run(ExportRequest(), tmp_path / "again")
    assert slept == [60]


def test_an_export_that_never_completes_stops_at_the_wait_limit(tmp_path: Path) -> None:
    now = [0.0]
    server = Server(running=10_000, retry_after="30")
    bulk, _, _ = exporter(server, max_wait_s=100, clock=lambda: now[0])
    bulk.client.sleep = lambda s: now.__setitem__(0, now[0] + s)

    with pytest.raises(FhirBulkExportFailed, match="within 100 s"):
        bulk.run(ExportRequest(), tmp_path)
    assert now[0] == 90.0  # three waits of 30 s; a fourth would pass the limit
    assert not (tmp_path / MANIFEST).exists()


def test_a_job_failing_on_the_server_is_terminal_or_transient_as_the_server_says(
    tmp_path: Path,
) -> None:
    issue = {"severity": "error", "code": "exception", "diagnostics": "disk full"}
    failed = {"resourceType": "OperationOutcome", "issue": [issue]}
    server = Server(running=1)
    server.status_answer = httpx.Response(500, json=failed)
    bulk, _, _ = exporter(server)
    with pytest.raises(FhirBulkExportFailed, match="disk full") as caught:
        bulk.run(ExportRequest(), tmp_path)
    assert caught.value.code == "PACS-709"
    assert not caught.value.transient

    issue["code"] = "transient"
    server.status_answer = httpx.Response(500, json=failed)
    with pytest.raises(FhirServerUnavailable):
        bulk.run(ExportRequest(), tmp_path)


def test_a_429_while_polling_means_poll_slower(tmp_path: Path) -> None:
    server = Server(running=0)
    answers = [httpx.Response(429, headers={"Retry-After": "5"})]
    real = server.__call__

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == STATUS and request.method == "GET" and answers:
            return answers.pop()
        return real(request)

    slept: list[float] = []
    client = FhirClient(BASE, httpx.Client(transport=httpx.MockTransport(handler)),
                        retry=RetryPolicy(attempts=1), sleep=slept.append)  # fmt: skip
    result = BulkExport(client).run(ExportRequest(), tmp_path)
    assert slept == [5.0]
    assert result.resources == 9


def test_a_download_breaking_off_leaves_the_earlier_export_as_it_was(tmp_path: Path) -> None:
    bulk, _, _ = exporter(Server(running=0))
    bulk.run(ExportRequest(), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    server = Server(running=0)
    server.files[f"{BASE}/files/p1"] = ndjson("Patient", 7)  # a newer export, different data
    real = server.__call__

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url).endswith("/o1"):
            raise httpx.ReadError("connection reset", request=request)
        return real(request)

    client = FhirClient(BASE, httpx.Client(transport=httpx.MockTransport(handler)),
                        retry=RetryPolicy(attempts=1), sleep=lambda _: None)  # fmt: skip
    with pytest.raises(FhirServerUnavailable, match="connection reset"):
        BulkExport(client).run(ExportRequest(), tmp_path)

    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no staging folder left, no file of the broken export


def test_a_rerun_replaces_the_files_instead_of_appending(tmp_path: Path) -> None:
    for _ in range(2):
        bulk, _, _ = exporter(Server(running=0))
        bulk.run(ExportRequest(), tmp_path)
    lines = (tmp_path / "Patient.001.ndjson").read_bytes().splitlines()
    assert len(lines) == 3


def test_a_line_of_another_type_than_the_manifest_says_is_refused(tmp_path: Path) -> None:
    server = Server(running=0)
    server.files[f"{BASE}/files/o1"] = ndjson("Observation", 1) + ndjson("Patient", 1)
    bulk, _, _ = exporter(server)
    with pytest.raises(FhirProtocolError, match="line 2 is a Patient"):
        bulk.run(ExportRequest(), tmp_path)


def test_a_kick_off_without_a_status_url_is_a_protocol_error(tmp_path: Path) -> None:
    client = FhirClient(BASE, httpx.Client(transport=httpx.MockTransport(
        lambda _: httpx.Response(200, json={"resourceType": "Bundle"}))))  # fmt: skip
    with pytest.raises(FhirProtocolError, match="kick-off answered HTTP 200"):
        BulkExport(client).run(ExportRequest(), tmp_path)
