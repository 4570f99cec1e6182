"""The in-memory FHIR server keeps the real server's contract (tests/fhir_server_cases.py,
run against sekmet-fhir in tests/integration/test_fhir_server.py) and can be told to
fail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

import fhir_server_cases as cases
from pacsync.connectors.memory import MemoryFhirServer
from pacsync.errors import FhirRateLimited, FhirRequestRejected


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=5)  # every write a little later
        return self.now

    def tick(self) -> dt.datetime:
        before = self.now
        self.now += dt.timedelta(seconds=1.1)
        return before


@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.__name__)
def test_the_fake_keeps_the_servers_contract(case: Callable[..., None]) -> None:
    clock = Clock()
    case(MemoryFhirServer(clock), clock.tick)


def test_it_fails_as_told_then_serves_again() -> None:
    server = MemoryFhirServer()
    server.fail_next = [FhirRateLimited("429")]

    with pytest.raises(FhirRateLimited):
        server.create(cases.patient("Later"))
    made = server.create(cases.patient("Later"))

    assert made.created
    assert server.calls == ["POST Patient", "POST Patient"]
    assert list(server.resources) == [("Patient", made.resource["id"])]


def test_a_search_parameter_it_does_not_understand_is_refused() -> None:
    with pytest.raises(FhirRequestRejected, match="'family'"):
        MemoryFhirServer().search("Patient", {"family": "Doe"})
