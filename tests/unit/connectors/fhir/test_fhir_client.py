"""The FHIR client against scripted answers (httpx.MockTransport): error translation,
retries on the transient marker only, Retry-After, token renewal on 401, paging through
next links (and broken ones), If-Match and conditional create headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pacsync.connectors.fhir.client import FhirClient, fhir_instant
from pacsync.connectors.fhir.outcomes import error_for, retry_after
from pacsync.errors import (
    AuthenticationFailed,
    DataValidationError,
    FhirAuthRejected,
    FhirConflict,
    FhirPreconditionFailed,
    FhirProtocolError,
    FhirRateLimited,
    FhirRequestRejected,
    FhirResourceNotFound,
    FhirServerUnavailable,
)
from pacsync.jobs.retry import RetryPolicy

BASE = "https://ehr.example.org/fhir"
Handler = Callable[[httpx.Request], httpx.Response]


def outcome(text: str, code: str = "processing") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def patient(pid: str, version: str = "1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"versionId": version, "lastUpdated": "2026-11-23T10:00:00Z"},
        "name": [{"family": f"Doe{pid}"}],
    }


def bundle(ids: list[str], next_link: str | None = None) -> dict[str, Any]:
    links = [{"relation": "next", "url": next_link}] if next_link else []
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": patient(i), "search": {"mode": "match"}} for i in ids],
    }


class Tokens:
    """A stand-in token source counting what it hands out and drops."""

    def __init__(self) -> None:
        self.issued = 0
        self.dropped: list[str] = []

    def token(self) -> Any:
        self.issued += 1
        return type("T", (), {"value": f"t{self.issued}"})()

    def invalidate(self, value: str | None = None) -> None:
        self.dropped.append(value or "")


def client(
    handler: Handler, *, attempts: int = 3, tokens: Any = None
) -> tuple[FhirClient, list[float]]:
    slept: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(handler))
    fhir = FhirClient(
        BASE,
        http,
        tokens=tokens,
        retry=RetryPolicy(attempts=attempts, base_delay=1.0, jitter=0.0),
        sleep=slept.append,
        connection="ehr",
    )
    return fhir, slept


# -- error translation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "code", "transient"),
    [
        (401, FhirAuthRejected, "PACS-701", False),
        (403, FhirAuthRejected, "PACS-701", False),
        (404, FhirResourceNotFound, "PACS-702", False),
        (410, FhirResourceNotFound, "PACS-702", False),
        (409, FhirConflict, "PACS-703", False),
        (412, FhirPreconditionFailed, "PACS-704", False),
        (429, FhirRateLimited, "PACS-706", True),
        (500, FhirServerUnavailable, "PACS-705", True),
        (503, FhirServerUnavailable, "PACS-705", True),
        (400, FhirRequestRejected, "PACS-707", False),
        (422, FhirRequestRejected, "PACS-707", False),
    ],
)
def test_each_status_has_its_coded_error(
    status: int, error: type[Exception], code: str, transient: bool
) -> None:
    response = httpx.Response(status, json=outcome("the server's reason"))
    found = error_for(response, "GET Patient/1", "ehr")
    assert isinstance(found, error)
    assert (found.code, found.transient, found.connection) == (code, transient, "ehr")
    assert "the server's reason" in found.message
    assert "GET Patient/1" in found.message
    if status in (401, 403):
        assert isinstance(found, AuthenticationFailed)


def test_retry_after_reads_seconds_and_dates() -> None:
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    assert retry_after("7") == 7.0
    assert retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


# -- retries ---------------------------------------------------------------------------


def test_a_429_is_retried_after_what_retry_after_says() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "12"}, json=outcome("slow down")),
        httpx.Response(200, json=patient("1")),
    ]
    fhir, slept = client(lambda _: answers.pop(0))

    assert fhir.read("Patient", "1").resource["id"] == "1"
    assert slept == [12.0]  # not the policy's 1 s


def test_5xx_and_timeouts_are_retried_then_given_up_as_transient() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(503, json=outcome("maintenance"))

    fhir, slept = client(handler, attempts=3)
    with pytest.raises(FhirServerUnavailable) as caught:
        fhir.read("Patient", "1")

    assert calls == 3
    assert slept == [1.0, 2.0]
    assert caught.value.transient
    assert "maintenance" in caught.value.message


def test_terminal_errors_are_not_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(404, json=outcome("no such patient"))

    fhir, slept = client(handler)
    with pytest.raises(FhirResourceNotFound):
        fhir.read("Patient", "404")
    assert calls == ["GET"]
    assert slept == []


def test_a_plain_create_is_not_repeated_after_a_5xx_the_server_may_have_done_it() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(502)

    fhir, _ = client(handler)
    with pytest.raises(FhirServerUnavailable):
        fhir.create({"resourceType": "Patient", "name": [{"family": "Once"}]})
    assert calls == ["POST"]


def test_a_conditional_create_is_retried_and_sends_if_none_exist() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503)
        return httpx.Response(201, json=patient("9"), headers={"ETag": 'W/"1"'})

    fhir, _ = client(handler)
    made = fhir.create(
        {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "42"}]},
        if_none_exist={"identifier": "urn:mrn|42"},
    )

    assert made.created
    assert made.etag == 'W/"1"'
    assert len(seen) == 2
    assert parse_qs(seen[1].headers["If-None-Exist"]) == {"identifier": ["urn:mrn|42"]}


def test_an_expired_token_is_renewed_once_on_401() -> None:
    tokens = Tokens()
    auths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        auths.append(request.headers["Authorization"])
        if len(auths) == 1:
            return httpx.Response(401, json=outcome("Access token expired", "expired"))
        return httpx.Response(200, json=patient("1"))

    fhir, slept = client(handler, tokens=tokens)
    fhir.read("Patient", "1")

    assert auths == ["Bearer t1", "Bearer t2"]
    assert tokens.dropped == ["t1"]
    assert slept == []


def test_a_revoked_client_fails_after_one_renewal() -> None:
    tokens = Tokens()
    fhir, _ = client(lambda _: httpx.Response(401, json=outcome("revoked")), tokens=tokens)

    with pytest.raises(FhirAuthRejected, match="revoked"):
        fhir.read("Patient", "1")
    assert tokens.issued == 2


# -- writes ----------------------------------------------------------------------------


def test_update_sends_if_match_and_a_stale_etag_is_a_precondition_failure() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("If-Match") == 'W/"1"':
            return httpx.Response(412, json=outcome("Version conflict"))
        return httpx.Response(200, json=patient("5", "3"), headers={"ETag": 'W/"3"'})

    fhir, _ = client(handler)
    with pytest.raises(FhirPreconditionFailed) as caught:
        fhir.update(patient("5"), if_match='W/"1"')
    assert caught.value.code == "PACS-704"
    assert not caught.value.transient

    written = fhir.update(patient("5", "2"), if_match="2")  # a bare version id works too
    assert seen[-1].headers["If-Match"] == 'W/"2"'
    assert (written.version, written.etag) == ("3", 'W/"3"')


def test_an_invalid_resource_is_refused_before_it_is_sent() -> None:
    sent: list[httpx.Request] = []
    fhir, _ = client(lambda r: sent.append(r) or httpx.Response(201))

    with pytest.raises(DataValidationError, match="birthDate"):
        fhir.create({"resourceType": "Patient", "birthDate": "yesterday"})
    assert sent == []


def test_an_invalid_resource_from_the_server_is_a_protocol_error() -> None:
    bad = {"resourceType": "Patient", "id": "1", "gender": ["not", "a", "code"]}
    fhir, _ = client(lambda _: httpx.Response(200, json=bad))

    with pytest.raises(FhirProtocolError, match="invalid Patient"):
        fhir.read("Patient", "1")


def test_a_body_that_is_not_json_is_a_protocol_error() -> None:
    fhir, _ = client(lambda _: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(FhirProtocolError, match="not JSON"):
        fhir.read("Patient", "1")


# -- paging ----------------------------------------------------------------------------


def pages(answers: dict[str, Any]) -> Handler:
    """Answers by query string ('' for the first request)."""

    def handler(request: httpx.Request) -> httpx.Response:
        key = parse_qs(urlsplit(str(request.url)).query).get("page", [""])[0]
        answer = answers[key]
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    return handler


def test_search_follows_next_links_to_the_last_page() -> None:
    fhir, _ = client(
        pages(
            {
                "": bundle(["1", "2"], f"{BASE}/Patient?page=2"),
                "2": bundle(["3", "4"], "Patient?page=3"),  # relative links resolve too
                "3": bundle(["5"]),
            }
        )
    )
    assert [p["id"] for p in fhir.search("Patient", {"family": "Doe"})] == list("12345")


def test_only_matches_are_yielded_not_includes_or_outcomes() -> None:
    page = bundle(["1"])
    page["entry"] += [
        {"resource": patient("inc"), "search": {"mode": "include"}},
        {"resource": outcome("note"), "search": {"mode": "outcome"}},
    ]
    fhir, _ = client(lambda _: httpx.Response(200, json=page))
    assert [p["id"] for p in fhir.search("Patient")] == ["1"]


@pytest.mark.parametrize(
    ("next_answer", "message"),
    [
        (httpx.Response(404, json=outcome("page expired")), "next link is broken"),
        (httpx.Response(400, json=outcome("bad _offset")), "next link is broken"),
        (httpx.Response(200, json=outcome("not a bundle")), "expected a Bundle"),
    ],
)
def test_a_broken_next_link_stops_the_search_with_a_clear_error(
    next_answer: httpx.Response, message: str
) -> None:
    fhir, _ = client(pages({"": bundle(["1"], f"{BASE}/Patient?page=2"), "2": next_answer}))
    found: list[str] = []
    with pytest.raises(FhirProtocolError, match=message) as caught:
        found.extend(p["id"] for p in fhir.search("Patient"))
    assert found == ["1"]  # what came before the break, and nothing taken as complete
    assert "page 2" in caught.value.message


def test_next_links_to_another_host_or_a_loop_are_refused() -> None:
    fhir, _ = client(
        pages({"": bundle(["1"], "https://elsewhere.example.com/fhir/Patient?page=2")})
    )
    with pytest.raises(FhirProtocolError, match="leaves the server"):
        list(fhir.search("Patient"))

    fhir, _ = client(
        pages(
            {
                "": bundle(["1"], f"{BASE}/Patient?page=2"),
                "2": bundle(["2"], f"{BASE}/Patient?page=2"),
            }
        )
    )
    with pytest.raises(FhirProtocolError, match="repeats"):
        list(fhir.search("Patient"))


def test_a_transient_failure_on_a_next_page_stays_transient() -> None:
    fhir, _ = client(
        pages({"": bundle(["1"], f"{BASE}/Patient?page=2"), "2": httpx.Response(503)}),
        attempts=1,
    )
    with pytest.raises(FhirServerUnavailable):
        list(fhir.search("Patient"))


def test_changed_since_asks_for_last_updated_after_the_instant_and_a_page_size() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=bundle([]))

    fhir, _ = client(handler)
    since = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert list(fhir.changed_since("Observation", since, {"patient": "Patient/1"})) == []

    query = parse_qs(urlsplit(str(seen[0].url)).query)
    assert query["_lastUpdated"] == ["gt2026-11-23T10:00:00Z"]
    assert query["_count"] == ["200"]
    assert query["patient"] == ["Patient/1"]
    assert fhir_instant(since) == "2026-11-23T10:00:00Z"
