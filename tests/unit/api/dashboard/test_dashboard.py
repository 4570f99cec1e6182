"""The dashboard in-process: login and its session cookie, every page for each role,
the session bridge to the REST API (same origin, CSRF token for writes), and pages
showing what the store holds."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import httpx
import jwt
import pytest

from api.conftest import Api, TestClient, settings_for
from clinical_messages import incoming
from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.dashboard.session import COOKIE, Session
from pacsync.db.messages import MessageStore
from pacsync.domain.access import Role
from pacsync.errors import PacsyncError
from pacsync.ports import Settled
from pacsync.security.secrets import SecretBox

PAGES = ["/", "/pacs-sync", "/jobs", "/conflicts", "/webhooks", "/imaging", "/messages", "/audit"]


def login(api: Api, role: Role | None = Role.ADMIN, token: str | None = None) -> httpx.Response:
    client = api.client
    client.cookies.clear()
    form = client.get("/login")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    given = token if token is not None else api.tokens[role or Role.ADMIN]
    return client.post(
        "/login",
        data={"token": given, "csrf": csrf.group(1), "next": "/jobs"},
        follow_redirects=False,
    )


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def test_a_page_without_a_session_sends_to_the_login_form(api: Api) -> None:
    response = api.client.get("/jobs?status=failed", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fjobs%3Fstatus%3Dfailed"


def test_login_sets_an_httponly_strict_cookie_and_follows_next(api: Api) -> None:
    response = login(api)
    assert response.status_code == 303
    assert response.headers["location"] == "/jobs"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert api.tokens[Role.ADMIN] not in cookie  # sealed, not readable
    assert api.audit("dashboard.login")[0]["outcome"] == "ok"


def test_a_wrong_key_or_a_missing_csrf_token_is_refused(api: Api) -> None:
    assert "was not accepted" in login(api, token="psk_nope_" + "A" * 43).text
    api.client.cookies.clear()
    refused = api.client.post("/login", data={"token": api.tokens[Role.ADMIN], "csrf": "x"})
    assert "form expired" in refused.text
    assert COOKIE not in api.client.cookies


def test_a_forged_or_expired_cookie_is_no_session(api: Api) -> None:
    box = SecretBox.load(api.settings)
    expired = Session("psk_x", "c", 0).seal(box)
    assert Session.open(box, expired) is None
    assert Session.open(box, "enc:v1:garbage") is None
    assert Session.open(box, Session.new("t").seal(box)) is not None


@pytest.mark.parametrize("role", list(Role))
def test_every_page_renders_for_every_role(api: Api, role: Role) -> None:
    login(api, role)
    for path in PAGES:
        page = api.client.get(path)
        if path == "/audit" and role is not Role.ADMIN:
            assert page.status_code == 403, path
            continue
        assert page.status_code == 200, f"{path}: {page.text[:300]}"
        assert "Content-Security-Policy" in page.headers
        assert 'aria-current="page"' in page.text


def test_a_viewer_sees_no_write_controls(api: Api) -> None:
    api.pipeline_file()
    job = api.post("/jobs", json={"pipeline": "county"}, as_=Role.OPERATOR)
    assert job.status_code in (202, 503), job.text
    login(api, Role.VIEWER)
    for path in ("/pacs-sync", "/jobs", "/imaging", "/webhooks"):
        text = api.client.get(path).text
        for control in ("data-start", "data-cancel", "data-retry", "test-connection",
                        "new-webhook", "data-scan", "pipeline-text"):  # fmt: skip
            assert control not in text, f"{control} on {path}"
    login(api, Role.ADMIN)
    text = api.client.get("/pacs-sync").text
    assert "data-start" in text
    assert "test-connection" in text
    assert "pipeline-text" in text


def test_the_bridge_calls_the_api_with_the_session_and_writes_need_the_csrf_token(
    api: Api,
) -> None:
    login(api, Role.OPERATOR)
    page = api.client.get("/jobs")
    listed = api.client.get("/api/v1/jobs")
    assert listed.status_code == 200, listed.text
    cross = api.client.get("/api/v1/jobs", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 401
    api.pipeline_file()
    body = {"pipeline": "county", "mode": "full"}
    assert api.client.post("/api/v1/jobs", json=body).status_code == 401  # no CSRF token
    forged = api.client.post("/api/v1/jobs", json=body, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 401
    sent = api.client.post("/api/v1/jobs", json=body, headers={"X-CSRF-Token": csrf_of(page)})
    assert sent.status_code in (202, 503), sent.text
    assert sent.status_code == 503 or api.audit("job.submit")[0]["actor"].startswith("key:")


def test_a_viewer_session_is_refused_writes_by_the_api(api: Api) -> None:
    login(api, Role.VIEWER)
    page = api.client.get("/conflicts")
    conflict = api.store.conflicts.record(
        "fhir:ehr", "Patient", "p1", [{"field": "gender", "local": "f", "remote": "o", "base": "u"}]
    )
    refused = api.client.post(
        f"/api/v1/conflicts/{conflict}/resolve",
        json={"strategy": "USE_LOCAL", "reason": "x"},
        headers={"X-CSRF-Token": csrf_of(page)},
    )
    assert refused.status_code == 403


def test_the_conflict_page_shows_each_side_and_marks_the_fields_both_changed(api: Api) -> None:
    conflict = api.store.conflicts.record(
        "fhir:ehr",
        "Patient",
        "p1",
        [
            {"field": "gender", "local": "female", "remote": "other", "base": "unknown"},
            {"field": "phone", "local": "555-0101", "remote": "555-0101", "base": "555-0100"},
        ],
    )
    login(api, Role.OPERATOR)
    page = api.client.get(f"/conflicts/{conflict}").text
    assert page.count("both changed") == 1
    assert 'class="clash">female' in page
    assert 'class="clash">other' in page
    assert 'id="resolve"' in page
    assert api.audit("conflict.read")[0]["target"] == str(conflict)


def test_logout_needs_the_csrf_token_and_ends_the_session(api: Api) -> None:
    login(api)
    page = api.client.get("/")
    api.client.post("/logout", data={"csrf": "wrong"})
    assert api.client.get("/", follow_redirects=False).status_code == 200
    api.client.post("/logout", data={"csrf": csrf_of(page)})
    assert api.client.get("/", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_session(api: Api) -> None:
    view, token = api.store.api_keys.create("temp", Role.OPERATOR)
    login(api, token=token)
    assert api.client.get("/", follow_redirects=False).status_code == 200
    api.store.api_keys.revoke(view.id)
    api.client.app.state.api.keys.clear()  # type: ignore[attr-defined]
    assert api.client.get("/", follow_redirects=False).status_code == 303


def test_an_identity_provider_token_signs_in_too(tmp_path: Path) -> None:
    secret = "dashboard-jwt-secret-of-at-least-32-bytes"
    settings = settings_for(tmp_path, jwt_secret=secret)
    store = bootstrap.store(settings)
    claims = {"sub": "ana", "role": "operator", "exp": int(time.time()) + 300}
    token = jwt.encode(claims, secret, algorithm="HS256")
    try:
        with TestClient(create_app(settings, store=store)) as client:
            form = client.get("/login")
            assert "identity-provider token" in form.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            client.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/"})
            page = client.get("/pacs-sync")
            assert page.status_code == 200
            assert "jwt:ana" in page.text
            assert "role-operator" in page.text
    finally:
        store.engine.dispose()


def test_a_job_with_errors_shows_them(api: Api) -> None:
    api.pipeline_file()
    job_id = api.store.jobs.create(kind="sync", pipeline="county", mode="full", entities=[])
    api.store.jobs.start(job_id)
    api.store.jobs.finish(
        job_id,
        "failed",
        {"entities": {"parcels": {"read": 3, "total": 10, "dead_lettered": 1}}},
        error=PacsyncError("the legacy database refused the login", hint="Check the password."),
    )
    login(api, Role.OPERATOR)
    page = api.client.get(f"/jobs/{job_id}")
    assert page.status_code == 200, page.text[:500]
    assert "the legacy database refused the login" in page.text
    assert f'data-retry="{job_id}"' in page.text
    listed = api.client.get("/jobs?status=failed").text
    assert f'data-job="{job_id}"' in listed


def test_a_password_written_in_a_pipeline_file_is_never_shown(api: Api) -> None:
    path = api.pipeline_file()
    text = path.read_text(encoding="utf-8").replace(
        "sqlite:///", "postgresql+psycopg://sync:hunter2@127.0.0.1:1/x?unused=sqlite:///", 1
    )
    path.write_text(text, encoding="utf-8")
    login(api, Role.ADMIN)
    page = api.client.get("/pacs-sync?pipeline=county").text
    assert "hunter2" not in page
    assert 'id="pipeline-locked"' in page
    assert 'id="save-pipeline"' not in page


def test_a_viewer_sees_a_failed_message_de_identified_with_its_error(api: Api) -> None:
    journal = MessageStore(api.store.engine)
    journal.keep([incoming("F1")])
    (pending,) = journal.pending(None, 10)
    why = {"code": "PACS-601", "message": "PID-7.1: '19700132' is not a real date"}
    journal.settle([Settled(pending.id, "P100", why)], dt.datetime(2026, 11, 23, 11, 0))
    login(api, Role.VIEWER)
    text = api.client.get(f"/messages/{pending.id}").text
    assert "PACS-601" in text
    for identifying in ("19700132", "Doe", "P100"):
        assert identifying not in text, identifying
    login(api, Role.OPERATOR)
    text = api.client.get(f"/messages/{pending.id}").text
    assert "19700132" in text
    assert "Doe" in text
