"""FHIR Bulk Data export (``$export``): kick-off, status polling, NDJSON download.

1. Kick-off: ``GET [base]/$export`` (or ``Patient/$export``, ``Group/{id}/$export``) with
   ``Prefer: respond-async``, ``_type``, ``_since`` and ``_typeFilter``; the server answers
   202 with the status URL in Content-Location.
2. Polling: 202 (with X-Progress) until done, waiting what Retry-After says (bounded by
   ``min_poll_s``/``max_poll_s``); a 429 there is a request to poll slower, not a failure.
   200 brings the manifest.  An error answer is a failed export: FhirBulkExportFailed
   (terminal) — or transient when the server marks its OperationOutcome issue
   ``transient``.
3. Download: each output file streamed into a staging folder (``.incoming``), every line
   checked to be a JSON resource of the manifest's type; when all are complete they
   replace the earlier export's files in the folder and ``manifest.json`` is written
   last.  Nothing is appended or kept twice; a failure midway leaves the earlier export
   as it was; and a folder with ``manifest.json``
   holds a complete export whose ``transactionTime`` is the next export's ``_since``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pacsync.connectors.fhir.client import FhirClient, fhir_instant
from pacsync.connectors.fhir.outcomes import diagnostics, error_for, retry_after
from pacsync.errors import (
    FhirBulkExportFailed,
    FhirProtocolError,
    FhirServerUnavailable,
    PacsyncError,
)

NDJSON = "application/fhir+ndjson"
MANIFEST = "manifest.json"
STAGING = ".incoming"  # where an export's files wait until all are complete
OUR_FILE = re.compile(r"^[A-Z][A-Za-z]+\.\d{3}\.ndjson(\.part)?$")


@dataclass(frozen=True)
class ExportedFile:
    resource_type: str
    path: Path
    resources: int
    bytes: int


@dataclass
class ExportResult:
    transaction_time: str
    request: str
    files: list[ExportedFile] = field(default_factory=list)
    errors: list[ExportedFile] = field(default_factory=list)
    polls: int = 0

    @property
    def resources(self) -> int:
        return sum(f.resources for f in self.files)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for f in self.files:
            found[f.resource_type] = found.get(f.resource_type, 0) + f.resources
        return found


@dataclass(frozen=True)
class ExportRequest:
    path: str = "$export"  # or Patient/$export, Group/{id}/$export
    types: Sequence[str] = ()
    since: dt.datetime | None = None
    type_filters: Sequence[str] = ()

    def params(self) -> list[tuple[str, str]]:
        params = [("_outputFormat", NDJSON)]
        if self.types:
            params.append(("_type", ",".join(self.types)))
        if self.since is not None:
            params.append(("_since", fhir_instant(self.since)))
        params += [("_typeFilter", f) for f in self.type_filters]
        return params


Progress = Callable[[str], None]
Downloaded = Callable[[ExportedFile], None]


def _quiet(_: object) -> None:
    return None


class BulkExport:
    def __init__(
        self,
        client: FhirClient,
        *,
        max_wait_s: float = 3600.0,
        min_poll_s: float = 0.5,
        max_poll_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        progress: Progress = _quiet,
        downloaded: Downloaded = _quiet,
    ) -> None:
        self.client = client
        self.max_wait_s = max_wait_s
        self.min_poll_s = min_poll_s
        self.max_poll_s = max_poll_s
        self.clock = clock
        self.progress = progress  # what the export is doing, in words
        self.downloaded = downloaded  # each output file, once complete

    # -- 1. kick-off -------------------------------------------------------------------

    def kick_off(self, request: ExportRequest) -> str:
        response = self.client.send(
            "GET", request.path, params=request.params(), headers={"Prefer": "respond-async"}
        )
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise FhirProtocolError(
                f"$export kick-off answered HTTP {response.status_code} "
                + ("without" if not location else "with")
                + " a Content-Location (a Bulk Data server answers 202 and the status URL)",
                connection=self.client.connection,
            )
        self.progress(f"export accepted; status at {location}")
        return str(location)

    # -- 2. polling --------------------------------------------------------------------

    def _pause(self, asked: float | None) -> float:
        """Seconds to wait before the next poll: what the server asked, within bounds."""
        pause = self.min_poll_s if asked is None else asked
        return min(self.max_poll_s, max(self.min_poll_s, pause))

    def wait(self, status_url: str) -> tuple[dict[str, Any], int]:
        """The manifest, once the export is complete, and the number of polls."""
        deadline = self.clock() + self.max_wait_s
        polls = 0
        while True:
            polls += 1
            response = self.client.send("GET", status_url, ok=tuple(range(400, 600)))
            status = response.status_code
            if status == 200:
                return self._manifest(response), polls
            if status == 202:
                self.progress(f"in progress: {response.headers.get('X-Progress') or 'working'}")
                pause = self._pause(retry_after(response.headers.get("Retry-After")))
            elif status == 429:
                asked = retry_after(response.headers.get("Retry-After"))
                pause = self._pause(self.max_poll_s if asked is None else asked)
            else:
                raise self._failed(response, status_url)
            if self.clock() + pause > deadline:
                raise FhirBulkExportFailed(
                    f"the export did not complete within {self.max_wait_s:.0f} s "
                    f"(status {status_url})",
                    hint="Raise the export's wait limit, or export less (--type, --since).",
                    connection=self.client.connection,
                )
            self.client.sleep(pause)

    def _failed(self, response: httpx.Response, status_url: str) -> PacsyncError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"):
            return error_for(response, f"GET {status_url}", self.client.connection)
        message = (
            f"the export failed on the server: HTTP {response.status_code}: {diagnostics(body)}"
        )
        codes = {i.get("code") for i in body.get("issue") or [] if isinstance(i, dict)}
        if "transient" in codes:
            error: PacsyncError = FhirServerUnavailable(message, connection=self.client.connection)
            error.retry_after = retry_after(response.headers.get("Retry-After"))
            return error
        return FhirBulkExportFailed(message, connection=self.client.connection)

    def _manifest(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("output"), list):
            raise FhirBulkExportFailed(
                "the export's completion answer is not a manifest (no output list)",
                connection=self.client.connection,
            )
        return body

    # -- 3. download -------------------------------------------------------------------

    def download(self, manifest: dict[str, Any], into: Path) -> ExportResult:
        """The manifest's files, downloaded into a staging folder and moved into ``into``
        once all are complete (replacing the earlier export's); a failure leaves the
        earlier export as it was."""
        into.mkdir(parents=True, exist_ok=True)
        staging = into / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        try:
            result = self._download(manifest, staging)
            for folder in (into, into / "errors"):  # the earlier export's files go
                for old in folder.glob("*.ndjson*"):
                    if OUR_FILE.match(old.name):
                        old.unlink()
            (into / MANIFEST).unlink(missing_ok=True)
            for items in (result.files, result.errors):
                for i, file in enumerate(items):
                    target = into / file.path.relative_to(staging)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(file.path, target)
                    items[i] = ExportedFile(file.resource_type, target, file.resources, file.bytes)
            os.replace(staging / MANIFEST, into / MANIFEST)  # last: the export is complete
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return result

    def _download(self, manifest: dict[str, Any], into: Path) -> ExportResult:
        into.mkdir(parents=True)
        authorize = bool(manifest.get("requiresAccessToken", True))
        result = ExportResult(
            str(manifest.get("transactionTime") or ""), str(manifest.get("request") or "")
        )
        numbers: dict[str, int] = {}
        for kind, items in (("output", result.files), ("error", result.errors)):
            for item in manifest.get(kind) or []:
                rtype, url = str(item.get("type") or ""), str(item.get("url") or "")
                if not rtype or not url:
                    raise FhirBulkExportFailed(f"a manifest {kind} entry lacks its type or url")
                numbers[rtype] = numbers.get(rtype, 0) + 1
                name = f"{rtype}.{numbers[rtype]:03d}.ndjson"
                folder = into if kind == "output" else into / "errors"
                items.append(
                    self._file(url, rtype, folder / name, authorize, check=kind == "output")
                )
                self.progress(f"downloaded {name}: {items[-1].resources} resources")
                if kind == "output":
                    self.downloaded(items[-1])
        record = {
            "transactionTime": result.transaction_time,
            "request": result.request,
            "output": [
                {"type": f.resource_type, "file": f.path.name, "count": f.resources}
                for f in result.files
            ],
            "error": [
                {"type": f.resource_type, "file": f"errors/{f.path.name}", "count": f.resources}
                for f in result.errors
            ],
        }
        (into / MANIFEST).write_text(json.dumps(record, indent=2))
        return result

    def _file(
        self, url: str, rtype: str, target: Path, authorize: bool, check: bool
    ) -> ExportedFile:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        lines = size = 0
        response = self.client.send(
            "GET", url, headers={"Accept": NDJSON}, stream=True, authorize=authorize
        )
        try:
            with partial.open("wb") as out:
                pending = b""
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    size += len(chunk)
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        lines += self._line(line, rtype, target.name, lines, check)
                lines += self._line(pending, rtype, target.name, lines, check)
        except httpx.TransportError as error:
            partial.unlink(missing_ok=True)
            raise FhirServerUnavailable(
                f"the download of {url} broke off after {size} bytes: {error}",
                connection=self.client.connection,
            ) from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        os.replace(partial, target)
        return ExportedFile(rtype, target, lines, size)

    @staticmethod
    def _line(line: bytes, rtype: str, name: str, before: int, check: bool) -> int:
        if not line.strip():
            return 0
        if check:
            try:
                resource = json.loads(line)
            except ValueError:
                raise FhirProtocolError(f"{name} line {before + 1} is not JSON") from None
            found = resource.get("resourceType") if isinstance(resource, dict) else None
            if found != rtype:
                raise FhirProtocolError(
                    f"{name} line {before + 1} is a {found}, the manifest says {rtype}"
                )
        return 1

    # -- all three ---------------------------------------------------------------------

    def run(self, request: ExportRequest, into: Path, *, cancel_after: bool = True) -> ExportResult:
        status_url = self.kick_off(request)
        manifest, polls = self.wait(status_url)
        result = self.download(manifest, into)
        result.polls = polls
        if cancel_after:  # the server may drop the files now (DELETE on the status URL)
            with contextlib.suppress(PacsyncError):
                self.client.send("DELETE", status_url, ok=tuple(range(400, 600)))
        return result
