"""FHIR inbound read: paged search against Bulk $export, and an incremental read of 1%.

A real FHIR R4 server (sekmet-fhir 0.1.1, SQLite storage, SMART Backend Services, on
loopback — the integration tests' tests/fhir_server.py) is seeded with N Patients and
one Observation each.  Then pacsync's FHIR client reads them all:

  (a) paged search: ``Patient?_count=1000`` and ``Observation?_count=1000`` followed
      through next links — once as bytes to resources (JSON only) and once validated
      with the fhir.resources models, as the sync does;
  (b) Bulk $export (``_type=Patient,Observation``): kick-off, polling, NDJSON streamed to
      files (each line checked to be JSON of its type);
  (c) incremental: 1% of the patients changed, then read by ``_lastUpdated=gt…``.

Writes benchmarks/results/fhir.json.  ``--quick`` seeds 1,000 patients (under a minute);
the default is 10,000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# this file's folder, first on the path when run as a script, would make this module the
# `fhir` package that fhir.resources lives in; the tests' folder has the server fixture
sys.path[:] = [str(HERE.parent / "tests")] + [
    p for p in sys.path if Path(p or ".").resolve() != HERE
]

from fhir_server import seed_patients, sekmet, transaction  # noqa: E402
from pacsync.connectors.fhir.bulk import BulkExport, ExportRequest  # noqa: E402
from pacsync.connectors.fhir.client import FhirClient  # noqa: E402


def observation(patient_id: str, n: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2026-11-01T08:00:00Z",
        "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
    }


def seed(client: FhirClient, count: int) -> list[str]:
    ids = seed_patients(client, count, "bench")
    for start in range(0, len(ids), 500):
        batch = [observation(pid, n) for n, pid in enumerate(ids[start : start + 500], start)]
        client.transaction(transaction(batch))
    return ids


def paged(client: FhirClient) -> tuple[int, float]:
    started = time.perf_counter()
    found = 0
    for rtype in ("Patient", "Observation"):
        found += sum(1 for _ in client.search(rtype, {"_count": "1000"}))
    return found, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 patients (under a minute)")
    parser.add_argument("--patients", type=int, default=None)
    args = parser.parse_args()
    count = args.patients or (1000 if args.quick else 10_000)
    with tempfile.TemporaryDirectory(prefix="pacsync-fhir-bench-") as temp:
        folder = Path(temp)
        with sekmet(folder / "server") as server, server.client(page_size=1000) as client:
            started = time.perf_counter()
            ids = seed(client, count)
            seed_s = time.perf_counter() - started

            client.validate = False
            raw_count, raw_s = paged(client)
            client.validate = True
            valid_count, valid_s = paged(client)

            started = time.perf_counter()
            result = BulkExport(client, min_poll_s=0.1).run(
                ExportRequest(types=("Patient", "Observation")), folder / "bulk"
            )
            bulk_s = time.perf_counter() - started

            since = dt.datetime.now(dt.UTC).replace(microsecond=0)
            time.sleep(1.1)  # the instant is to the second
            changed = ids[:: max(1, len(ids) // max(1, count // 100))][: max(1, count // 100)]
            for pid in changed:
                current = client.read("Patient", pid)
                current.resource["gender"] = "other"
                client.update(current.resource, if_match=current.etag)
            started = time.perf_counter()
            delta = sum(1 for _ in client.changed_since("Patient", since, {"_count": "1000"}))
            incremental_s = time.perf_counter() - started
            assert delta == len(changed), (delta, len(changed))
            assert raw_count == valid_count == result.resources == 2 * count, (
                raw_count, valid_count, result.resources)  # fmt: skip
    figures = {
        "cores": os.cpu_count(),
        "patients": count,
        "resources": 2 * count,
        "seed_resources_per_s": round(2 * count / seed_s),
        "paged_resources_per_s": round(raw_count / raw_s),
        "paged_validated_resources_per_s": round(valid_count / valid_s),
        "bulk_resources_per_s": round(result.resources / bulk_s),
        "bulk_polls": result.polls,
        "incremental_1pct_changed": len(changed),
        "incremental_1pct_s": round(incremental_s, 3),
    }
    out = {
        "benchmark": "fhir",
        "quick": bool(args.quick),
        "figures": figures,
        "ratios": {
            "bulk_vs_paged": round(
                figures["bulk_resources_per_s"] / figures["paged_resources_per_s"], 2
            )
        },
        "notes": "loopback; sekmet-fhir 0.1.1 (SQLite) with SMART Backend Services tokens; "
        "paged search with _count=1000 (the server's maximum); paged_resources_per_s parses "
        "JSON only, paged_validated also validates each resource with fhir.resources (R4B); "
        "bulk (kick-off to files) streams NDJSON to files checking each line's JSON and type, "
        "and includes the polls' waits (the server asks for Retry-After: 1 s); incremental is "
        "the read by _lastUpdated after 1% of the patients changed",
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "fhir.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
