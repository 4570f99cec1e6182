"""The FHIR client against a real FHIR R4 server (sekmet-fhir 0.1.1 on loopback, see
tests/fhir_server.py): SMART Backend Services tokens, paged search and _lastUpdated,
conditional create and update with If-Match (412 on a stale ETag), Bulk $export of a
thousand patients at system, Patient and Group level, and ``_since``."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import fhir_server_cases as cases
from fhir_server import MRN, FhirServer, patient, seed_patients, sekmet, write_key
from pacsync.connectors.fhir import paging
from pacsync.connectors.fhir.auth import AccessToken
from pacsync.connectors.fhir.bulk import MANIFEST, BulkExport, ExportRequest
from pacsync.connectors.fhir.client import FhirClient
from pacsync.errors import (
    FhirAuthRejected,
    FhirPreconditionFailed,
    FhirResourceNotFound,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDED = 1000


@dataclass
class Seeded:
    server: FhirServer
    prefix: str
    ids: list[str]
    group: str


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with sekmet(tmp_path_factory.mktemp("sekmet")) as server, server.client() as client:
        prefix = f"seed{secrets.token_hex(3)}"
        ids = seed_patients(client, SEEDED, prefix)
        members = [{"entity": {"reference": f"Patient/{i}"}} for i in ids]
        group = client.create(
            {"resourceType": "Group", "type": "person", "actual": True, "member": members}
        )
        yield Seeded(server, prefix, ids, group.resource["id"])


@pytest.fixture
def client(seeded: Seeded) -> Iterator[FhirClient]:
    with seeded.server.client() as made:
        yield made


# -- SMART Backend Services ------------------------------------------------------------


def test_one_token_serves_many_requests(seeded: Seeded, client: FhirClient) -> None:
    for pid in seeded.ids[:5]:
        assert client.read("Patient", pid).resource["id"] == pid
    assert client.tokens is not None
    assert client.tokens.fetched == 1


def test_a_token_the_server_no_longer_accepts_is_replaced(
    seeded: Seeded, client: FhirClient
) -> None:
    assert client.tokens is not None
    client.tokens.token()
    client.tokens._token = AccessToken("revoked-or-expired", time.time() + 3600, "system/*.*")

    assert client.read("Patient", seeded.ids[0]).resource["id"] == seeded.ids[0]
    assert client.tokens.fetched == 2


def test_a_key_the_server_does_not_know_is_refused_with_a_hint(
    seeded: Seeded, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.pem"
    write_key(stranger)
    with (
        seeded.server.client(key_path=stranger) as client,
        pytest.raises(FhirAuthRejected) as caught,
    ):
        client.read("Patient", seeded.ids[0])
    assert caught.value.code == "PACS-701"
    assert "invalid_client" in caught.value.message
    assert not caught.value.transient


def test_without_a_token_the_server_says_401(seeded: Seeded) -> None:
    with (
        FhirClient(seeded.server.base_url, httpx.Client()) as anonymous,
        pytest.raises(FhirAuthRejected, match="401"),
    ):
        anonymous.read("Patient", seeded.ids[0])


# -- search ----------------------------------------------------------------------------


def test_a_search_pages_through_all_thousand_patients(seeded: Seeded, client: FhirClient) -> None:
    pages = list(client.search_pages("Patient", {"identifier": f"{MRN}|", "_count": "100"}))
    ids = [r["id"] for page in pages for r in paging.entries(page)]

    assert len(pages) >= SEEDED // 100
    assert len(ids) == len(set(ids))
    assert set(seeded.ids) <= set(ids)


def test_last_updated_finds_what_changed_after_an_instant(
    seeded: Seeded, client: FhirClient
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    time.sleep(1.1)  # the instant is to the second; the server's lastUpdated to the ms
    family = f"Changed{secrets.token_hex(3)}"
    made = [client.create(patient(f"lu-{family}-{n}", family)).resource["id"] for n in range(3)]
    touched = client.read("Patient", seeded.ids[7])
    touched.resource["name"][0]["family"] = family
    client.update(touched.resource, if_match=touched.etag)

    changed = [r["id"] for r in client.changed_since("Patient", before)]

    assert set(changed) == {*made, seeded.ids[7]}
    stamps = [r["meta"]["lastUpdated"] for r in client.changed_since("Patient", before)]
    assert stamps == sorted(stamps)  # oldest first: a checkpoint can follow the last one


# -- writes ----------------------------------------------------------------------------


def test_conditional_create_makes_a_patient_once(client: FhirClient) -> None:
    mrn = f"cc-{secrets.token_hex(4)}"
    first = client.create(patient(mrn, "Once"), if_none_exist={"identifier": f"{MRN}|{mrn}"})
    again = client.create(patient(mrn, "Once"), if_none_exist={"identifier": f"{MRN}|{mrn}"})

    assert first.created
    assert not again.created
    assert again.resource["id"] == first.resource["id"]
    assert len(list(client.search("Patient", {"identifier": f"{MRN}|{mrn}"}))) == 1


def test_if_match_writes_only_over_the_version_read(client: FhirClient) -> None:
    made = client.create(patient(f"im-{secrets.token_hex(4)}", "Before"))
    assert made.etag == 'W/"1"'

    mine = dict(made.resource, gender="female")
    written = client.update(mine, if_match=made.etag)
    assert (written.version, written.etag) == ("2", 'W/"2"')

    theirs = dict(made.resource, gender="male")  # a change based on version 1
    with pytest.raises(FhirPreconditionFailed) as caught:
        client.update(theirs, if_match=made.etag)
    assert caught.value.code == "PACS-704"
    assert "412" in caught.value.message
    assert client.read("Patient", made.resource["id"]).resource["gender"] == "female"


def test_conditional_update_creates_then_updates_by_identifier(client: FhirClient) -> None:
    mrn = f"cu-{secrets.token_hex(4)}"
    criteria = {"identifier": f"{MRN}|{mrn}"}
    created = client.conditional_update(patient(mrn, "First"), criteria)
    updated = client.conditional_update(patient(mrn, "Second"), criteria)

    assert created.created
    assert updated.resource["id"] == created.resource["id"]
    assert updated.version == "2"


def test_a_missing_resource_is_not_found_and_deleting_it_again_is_fine(
    client: FhirClient,
) -> None:
    made = client.create(patient(f"del-{secrets.token_hex(4)}", "Gone"))
    client.delete("Patient", made.resource["id"])
    client.delete("Patient", made.resource["id"])
    with pytest.raises(FhirResourceNotFound) as caught:
        client.read("Patient", made.resource["id"])
    assert caught.value.code == "PACS-702"


@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.__name__)
def test_the_server_keeps_the_contract_the_fake_keeps(
    client: FhirClient, case: Callable[..., None]
) -> None:
    def tick() -> dt.datetime:
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        time.sleep(1.1)  # _lastUpdated searches are to the second
        return before

    case(client, tick)


# -- Bulk $export ----------------------------------------------------------------------


def _lines(folder: Path, rtype: str) -> list[dict[str, object]]:
    found = []
    for path in sorted(folder.glob(f"{rtype}.*.ndjson")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line]
    return found


def test_a_group_export_brings_exactly_its_thousand_patients(
    seeded: Seeded, client: FhirClient, tmp_path: Path
) -> None:
    progress: list[str] = []
    bulk = BulkExport(client, min_poll_s=0.2, progress=progress.append)
    request = ExportRequest(path=f"Group/{seeded.group}/$export", types=("Patient",))

    result = bulk.run(request, tmp_path)

    exported = _lines(tmp_path, "Patient")
    assert result.counts() == {"Patient": SEEDED}
    assert sorted(str(r["id"]) for r in exported) == sorted(seeded.ids)
    assert result.polls >= 1
    assert any(line.startswith("in progress") for line in progress)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["output"][0]["count"] == SEEDED
    assert manifest["transactionTime"]


def test_a_system_export_since_an_instant_brings_only_what_changed(
    seeded: Seeded, client: FhirClient, tmp_path: Path
) -> None:
    full = BulkExport(client, min_poll_s=0.2).run(
        ExportRequest(types=("Patient",)), tmp_path / "all"
    )
    assert full.counts()["Patient"] >= SEEDED

    since = dt.datetime.now(dt.UTC).replace(microsecond=0)
    time.sleep(1.1)
    new = [client.create(patient(f"since-{secrets.token_hex(4)}", "New")).resource["id"]
           for _ in range(3)]  # fmt: skip

    delta = BulkExport(client, min_poll_s=0.2).run(
        ExportRequest(path="Patient/$export", types=("Patient",), since=since), tmp_path / "delta"
    )

    got = {str(r["id"]) for r in _lines(tmp_path / "delta", "Patient")}
    assert set(new) <= got
    assert not got & set(seeded.ids)
    assert delta.counts()["Patient"] == len(got)
