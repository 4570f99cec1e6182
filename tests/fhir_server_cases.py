"""What a sync relies on from a FHIR server (pacsync.ports.FhirServer), as cases run
against the in-memory fake (tests/unit/connectors/test_memory_fhir.py) and the real
test server (tests/integration/test_fhir_server.py), so the fake keeps the real
server's contract.

Each case takes the server and ``tick``, which lets time pass past the next whole
second (``_lastUpdated`` searches are to the second): a sleep for the real server, a
clock step for the fake.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from pacsync.errors import FhirPreconditionFailed, FhirResourceNotFound
from pacsync.ports import FhirServer

SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.7"
Tick = Callable[[], dt.datetime]  # lets time pass; the instant before it did


def patient(family: str, mrn: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": mrn or secrets.token_hex(6)}],
        "name": [{"family": family}],
        "gender": "unknown",
    }


def created_then_read_back(server: FhirServer, tick: Tick) -> None:
    made = server.create(patient("Read"))
    assert made.created
    assert (made.version, made.etag) == ("1", 'W/"1"')

    read = server.read("Patient", made.resource["id"])
    assert read.resource["name"] == [{"family": "Read"}]
    assert read.etag == 'W/"1"'
    assert read.resource["meta"]["lastUpdated"]


def if_match_writes_only_over_the_version_read(server: FhirServer, tick: Tick) -> None:
    made = server.create(patient("Before"))
    mine = server.update({**made.resource, "gender": "female"}, if_match=made.etag)
    assert (mine.status, mine.version, mine.etag) == (200, "2", 'W/"2"')

    with pytest.raises(FhirPreconditionFailed) as caught:
        server.update({**made.resource, "gender": "male"}, if_match=made.etag)
    assert caught.value.code == "PACS-704"
    assert server.read("Patient", made.resource["id"]).resource["gender"] == "female"

    plain = server.update({**mine.resource, "gender": "other"})  # no If-Match: last one wins
    assert plain.version == "3"


def conditional_create_makes_one(server: FhirServer, tick: Tick) -> None:
    mrn = secrets.token_hex(6)
    criteria = {"identifier": f"{SYSTEM}|{mrn}"}
    first = server.create(patient("Once", mrn), if_none_exist=criteria)
    again = server.create(patient("Once", mrn), if_none_exist=criteria)

    assert first.created
    assert not again.created
    assert again.resource["id"] == first.resource["id"]
    assert [r["id"] for r in server.search("Patient", criteria)] == [first.resource["id"]]


def changed_since_brings_what_changed_oldest_first(server: FhirServer, tick: Tick) -> None:
    family = f"Since{secrets.token_hex(3)}"
    old = server.create(patient(family))
    before = tick()
    newer = server.create(patient(family))
    changed = server.update({**old.resource, "gender": "female"}, if_match=old.etag)

    found = list(server.changed_since("Patient", before))

    assert [r["id"] for r in found] == [newer.resource["id"], changed.resource["id"]]
    assert [r["meta"]["versionId"] for r in found] == ["1", "2"]


def deleted_is_gone_and_deleting_again_is_fine(server: FhirServer, tick: Tick) -> None:
    made = server.create(patient("Gone"))
    server.delete("Patient", made.resource["id"])
    server.delete("Patient", made.resource["id"])

    with pytest.raises(FhirResourceNotFound) as caught:
        server.read("Patient", made.resource["id"])
    assert caught.value.code == "PACS-702"
    mrn = made.resource["identifier"][0]["value"]
    assert list(server.search("Patient", {"identifier": f"{SYSTEM}|{mrn}"})) == []


def deleted_since_names_what_was_deleted_after_an_instant(server: FhirServer, tick: Tick) -> None:
    before = tick()
    gone = server.create(patient("Gone"))
    back = server.create(patient("Back"))
    kept = server.create(patient("Kept"))
    server.delete("Patient", gone.resource["id"])
    server.delete("Patient", back.resource["id"])
    server.update({**back.resource, "gender": "female"})  # written again: not gone

    found = set(server.deleted_since("Patient", before))

    assert gone.resource["id"] in found
    assert not found & {back.resource["id"], kept.resource["id"]}


CASES = [
    created_then_read_back,
    if_match_writes_only_over_the_version_read,
    conditional_create_makes_one,
    changed_since_brings_what_changed_oldest_first,
    deleted_is_gone_and_deleting_again_is_fine,
    deleted_since_names_what_was_deleted_after_an_instant,
]
