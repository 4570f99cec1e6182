"""The fhir-sync job request: checked before anything is queued, a patient sync first."""

from __future__ import annotations

import pytest

from pacsync.bootstrap.fhir_sync import DEFAULT_TYPES, KIND, scope_of, sync_request
from pacsync.errors import ConfigError, InvalidRequest
from pacsync.jobs.queues import SYNC


def test_a_sync_request_is_a_job_on_the_sync_queue_partitioned_by_connection() -> None:
    request = sync_request("ehr", direction="inbound", strategy="field-merge",
                           fallback="remote-wins", rules={"telecom": "remote"})  # fmt: skip
    assert (request.kind, request.pipeline, request.queue) == (KIND, "ehr", SYNC)
    assert (request.mode, request.priority, request.partition) == ("incremental", 0, "fhir:ehr")
    assert request.entities == list(DEFAULT_TYPES)
    assert request.args["rules"] == {"telecom": "remote"}
    assert scope_of("ehr") == "fhir:ehr"


def test_a_patient_sync_goes_first_and_a_full_one_says_so() -> None:
    assert sync_request("ehr", patient="p1").priority < sync_request("ehr").priority
    assert sync_request("ehr", full=True).mode == "full"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"direction": "sideways"}, InvalidRequest),
        ({"strategy": "newest"}, ConfigError),
        ({"strategy": "field-merge", "fallback": "field-merge"}, ConfigError),
        ({"rules": {"telecom": "ehr"}}, ConfigError),
    ],
)
def test_a_bad_request_is_refused_before_it_is_queued(
    changes: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        sync_request("ehr", **changes)  # type: ignore[arg-type]
