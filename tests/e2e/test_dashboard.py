"""The operator dashboard in headless Chromium against a real ``pacsync serve`` and
``pacsync worker`` on loopback (tests/e2e/conftest.py): sign in, run a property sync
and watch its progress reach the end, cancel and retry a job, resolve a conflict,
add a webhook and see its delivery, search a patient and open a thumbnail and the
viewer; a viewer-role session shows no write controls and the API refuses its
writes.  Every page is saved as a screenshot (tests/browser.py's folder)."""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from browser import chromium, new_page, screenshot_folder
from fhir_server import SCOPE, FhirServer, sekmet
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.domain.access import Role

from .conftest import PATIENTS, Site

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(screenshot_folder() / f"dashboard-{name}.png"), full_page=True)


def sign_in(browser: Browser, site: Site, token: str, **size: int) -> Page:
    page = new_page(browser, **size)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{site.base}/")
    expect(page).to_have_url(f"{site.base}/login?next=%2F")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    return page


@pytest.fixture(scope="module")
def admin(browser: Browser, site: Site) -> Iterator[Page]:
    page = new_page(browser)
    page.goto(f"{site.base}/login")
    shot(page, "login")
    page.close()
    page = sign_in(browser, site, site.admin_key)
    yield page
    page.context.close()


def test_overview_shows_pipelines_health_queues_and_the_chart(admin: Page, site: Site) -> None:
    admin.goto(f"{site.base}/")
    expect(
        admin.locator("#pipelines").get_by_role("row", name="property-assessment")
    ).to_be_visible()
    expect(admin.locator("#health-status")).to_have_text("HEALTHY", timeout=TIMEOUT_MS)
    expect(admin.locator("svg.chart rect.bar")).to_have_count(14)
    expect(admin.get_by_role("rowheader", name="sync-jobs")).to_be_visible()
    shot(admin, "overview")


def test_a_property_sync_is_started_and_its_progress_followed_to_the_end(
    admin: Page, site: Site
) -> None:
    admin.goto(f"{site.base}/pacs-sync")
    admin.get_by_role("button", name="Test connection").click()
    expect(admin.locator("#test-result")).to_contain_text("Connected")
    shot(admin, "pacs-sync")

    admin.locator('button[data-start="full"][data-entity=""]').click()
    live = admin.locator("#live-status")
    expect(live).to_have_attribute("data-status", "succeeded", timeout=120_000)
    job_id = live.get_attribute("data-job")
    assert job_id
    properties = admin.locator('#entities tr[data-entity="properties"]')
    expect(properties.locator('[data-count="read"]')).to_have_text("124")
    bar = properties.locator("progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "124"
    with site.api() as api:
        job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["progress"]["entities"]["properties"]["read"] == 124
    expect(admin.locator(f'#history tr[data-job="{job_id}"]')).to_contain_text("succeeded")
    shot(admin, "pacs-sync-done")

    admin.get_by_role("button", name="Incremental sync of owners").click()  # one entity
    expect(live).not_to_have_attribute("data-job", job_id)
    expect(live).to_have_attribute("data-status", "succeeded", timeout=120_000)
    one = live.get_attribute("data-job")
    with site.api() as api:
        assert api.get(f"/jobs/{one}").json()["entities"] == ["owners"]

    admin.get_by_role("button", name="Run reconciliation").click()
    checklist = admin.locator("#reconciliation .checklist")
    expect(checklist).to_contain_text("✓ properties")
    expect(checklist.locator(":scope > li.error")).to_have_count(0)
    shot(admin, "pacs-sync-reconciled")


def test_a_failing_connection_test_shows_its_pacs_code(admin: Page, site: Site) -> None:
    folder = site.folder / "pacsync-home" / "pipelines"
    text = (folder / "property-assessment.yaml").read_text(encoding="utf-8")
    broken = text.replace("name: property-assessment", "name: broken-legacy").replace(
        "${LEGACY_DB_URL:-sqlite:///.pacsync/legacy.db}",
        "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/legacy",
    )
    path = folder / "broken-legacy.yaml"
    path.write_text(broken, encoding="utf-8")
    try:
        admin.goto(f"{site.base}/pacs-sync?pipeline=broken-legacy")
        admin.get_by_role("button", name="Validate").click()
        expect(admin.locator("#config-result")).to_contain_text("Valid: broken-legacy")
        admin.get_by_role("button", name="Test connection").click()
        result = admin.locator("#test-result")
        expect(result.locator("code.code")).to_have_text(re.compile(r"^PACS-\d{3}$"))
        assert "hunter2" not in result.inner_text()
        assert "hunter2" not in admin.content()
        shot(admin, "pacs-sync-connection-failed")
    finally:
        path.unlink()


def test_a_queued_job_is_cancelled_and_retried_from_the_jobs_page(admin: Page, site: Site) -> None:
    with site.api() as api:  # nobody serves the archive-scan queue: it waits
        queued = api.post("/archives/ct-nas/scan").json()["job_id"]
    admin.goto(f"{site.base}/imaging")  # the scan shows among the archives' scans, live
    scans = admin.locator("#scans")
    expect(scans).to_contain_text("ct-nas")
    expect(scans.locator(".status-queued")).to_be_visible()
    admin.goto(f"{site.base}/jobs")
    row = admin.locator(f'#jobs tr[data-job="{queued}"]')
    expect(row).to_have_attribute("data-status", "queued")
    shot(admin, "jobs")
    row.get_by_role("button", name=f"Cancel job {queued[:8]}").click()
    expect(row).to_have_attribute("data-status", "cancelled")
    row.get_by_role("button", name=f"Retry job {queued[:8]}").click()
    again = row.locator("a.retried")
    expect(again).to_be_visible()
    new_id = again.get_attribute("data-new-job")
    assert new_id
    assert new_id != queued
    with site.api() as api:
        assert api.get(f"/jobs/{queued}").json()["status"] == "cancelled"
        assert api.get(f"/jobs/{new_id}").json()["status"] == "queued"
    admin.goto(f"{site.base}/jobs/{new_id}")
    expect(admin.get_by_role("heading", name=f"Job {new_id[:8]}")).to_be_visible()
    shot(admin, "job-detail")
    admin.get_by_role("button", name="Cancel job").click()
    expect(admin.get_by_role("button", name="Retry job")).to_be_visible()
    with site.api() as api:
        assert api.get(f"/jobs/{new_id}").json()["status"] == "cancelled"


def test_a_dead_letter_is_read_and_reprocessed(admin: Page, site: Site) -> None:
    (letter,) = site.store.dead_letters.find(pipeline="property-assessment", limit=1)
    admin.goto(f"{site.base}/dead-letters/{letter['id']}")
    expect(admin.locator("main pre")).to_contain_text(letter["record_key"])
    shot(admin, "dead-letter")
    admin.goto(f"{site.base}/jobs#dead-letters")
    row = admin.locator(f'#letters tr[data-letter="{letter["id"]}"]')
    row.get_by_role("button", name=f"Reprocess dead letter {letter['id']}").click()
    expect(row).to_contain_text("queued as")
    job_id = row.inner_text().split("queued as ")[1].split()[0]
    with site.api() as api:
        assert api.get(f"/jobs/{job_id}").status_code == 200
    reread = site.store.dead_letters.get(letter["id"])
    assert reread is not None
    assert reread["status"] != "open" or reread["attempts"] > letter["attempts"]


def test_a_conflict_is_compared_side_by_side_and_resolved(admin: Page, site: Site) -> None:
    conflict = site.store.conflicts.record(
        "fhir:ehr",
        "Patient",
        "e2e-patient-1",
        [
            {"field": "gender", "local": "female", "remote": "other", "base": "unknown"},
            {"field": "telecom", "local": "555-0100", "remote": "555-0199", "base": "555-0100"},
            {"field": "birthDate", "local": "1970-01-01", "remote": "1970-01-01",
             "base": "1970-01-01"},
        ],
    )  # fmt: skip
    admin.goto(f"{site.base}/conflicts")
    expect(admin.locator(f'tr[data-conflict="{conflict}"]')).to_be_visible()
    shot(admin, "conflicts")
    admin.get_by_role("link", name=f"#{conflict}").click()
    gender = admin.get_by_role("row", name="gender")
    expect(gender.locator("td.clash")).to_have_count(2)
    expect(admin.get_by_role("row", name="telecom").locator("td.changed")).to_have_count(1)
    shot(admin, "conflict")
    admin.get_by_label("Use remote value").check()
    admin.get_by_label("Reason").fill("the clinic confirmed the remote values")
    admin.get_by_role("button", name="Resolve conflict").click()
    expect(admin.get_by_role("heading", name="Decision")).to_be_visible()
    decided = site.store.conflicts.get(conflict)
    assert decided is not None
    assert (decided.status, decided.strategy) == ("resolved", "use_remote")
    assert decided.resolved_value == {"gender": "other", "telecom": "555-0199",
                                      "birthDate": "1970-01-01"}  # fmt: skip
    assert decided.resolved_by
    assert decided.resolved_by.startswith("key:")
    assert site.store.audit.recent(action="conflict.resolve", limit=1)[0]["outcome"] == "ok"
    shot(admin, "conflict-resolved")


@pytest.fixture(scope="module")
def fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet(tmp_path_factory.mktemp("sekmet-dashboard")) as running:
        yield running


def _ok(done: Any) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def test_a_conflict_left_by_a_real_fhir_sync_is_resolved_in_the_dashboard(
    admin: Page, site: Site, fhir: FhirServer
) -> None:
    """A local patient synced to the FHIR server, changed on both sides, synced again:
    the conflict it leaves is decided in the dashboard and written by the next sync."""
    _ok(site.cli("fhir", "connection", "add", "ehr", fhir.base_url, "--client-id",
                 fhir.client_id, "--key", fhir.key_path, "--token-url", fhir.token_url,
                 "--scope", SCOPE))  # fmt: skip
    local = FhirResourceStore(site.store.engine)
    pid = f"e2e-{secrets.token_hex(3)}"
    local.save({"resourceType": "Patient", "id": pid, "gender": "female"})
    sync = ("fhir", "sync", "ehr", "--patient", pid, "--type", "Patient")
    _ok(site.cli(*sync))
    with fhir.client() as client:
        held = client.read("Patient", pid)
        client.update({**held.resource, "gender": "unknown"}, if_match=held.etag)
    current = local.current("Patient", pid)
    assert current is not None
    local.save({**current, "gender": "other"})
    _ok(site.cli(*sync))
    (found,), _ = site.store.conflicts.list(status="open", pipeline="fhir:ehr")

    admin.goto(f"{site.base}/conflicts/{found.id}")
    gender = admin.get_by_role("row", name="gender")
    expect(gender.locator("td.clash")).to_have_count(2)
    expect(gender).to_contain_text("other")
    expect(gender).to_contain_text("unknown")
    shot(admin, "conflict-fhir")
    admin.get_by_label("Use remote value").check()
    admin.get_by_label("Reason").fill("the EHR is right")
    admin.get_by_role("button", name="Resolve conflict").click()
    expect(admin.get_by_role("heading", name="Decision")).to_be_visible()
    _ok(site.cli(*sync))  # the decision pulled in
    decided = local.current("Patient", pid)
    assert decided is not None
    assert decided["gender"] == "unknown"


class Receiver:
    """An HTTP server on loopback recording every POST."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append({"headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def test_a_webhook_is_added_and_its_delivery_shows_in_the_log(
    admin: Page, site: Site, receiver: Receiver
) -> None:
    admin.goto(f"{site.base}/webhooks")
    admin.get_by_label("URL").fill(receiver.url)
    admin.get_by_label("job.completed").check()
    admin.get_by_label("Description").fill("e2e receiver")
    admin.get_by_role("button", name="Add webhook").click()
    expect(admin.locator("#webhook-secret")).to_contain_text("whsec_")
    shot(admin, "webhooks")

    with site.api() as api:
        started = api.post("/jobs", json={"pipeline": "property-assessment", "mode": "incremental"})
        assert started.status_code == 202, started.text
    deadline = time.monotonic() + 90
    while not any(r["body"].get("type") == "job.completed" for r in receiver.received):
        assert time.monotonic() < deadline, "no job.completed delivery"
        time.sleep(0.3)
    delivered = next(r for r in receiver.received if r["body"].get("type") == "job.completed")
    assert "webhook-signature" in {k.lower() for k in delivered["headers"]}

    admin.goto(f"{site.base}/webhooks")
    admin.get_by_role("link", name=receiver.url).click()
    log = admin.locator("#deliveries")
    for _ in range(60):
        if log.locator(".status-delivered").count():
            break
        admin.wait_for_timeout(500)
        admin.reload()
    expect(log.locator(".status-delivered").first).to_be_visible()
    expect(log).to_contain_text("job.completed")
    admin.get_by_role("button", name="Retry failed deliveries").click()
    expect(admin.locator("#hook-result")).to_have_text("0 deliveries queued again.")
    shot(admin, "webhook-deliveries")


def test_a_patient_is_found_as_you_type_and_its_study_opened_in_the_viewer(
    admin: Page, site: Site
) -> None:
    admin.goto(f"{site.base}/imaging")
    expect(admin.get_by_role("rowheader", name="ct-nas")).to_be_visible()
    admin.get_by_label("Patient name or ID").press_sequentially("doe", delay=40)
    results = admin.locator("#results tbody tr")
    expect(results).to_have_count(2)
    expect(admin.locator("#search-status")).to_contain_text("2 studies")
    took = int(admin.locator("#search-status").inner_text().split(" in ")[1].split(" ")[0])
    assert took < 1000  # loopback, cold: the 100 ms is the server's share
    shot(admin, "imaging-search")
    admin.get_by_role("link", name="DOE JANE").click()
    expect(admin.locator(".thumb img")).to_have_count(1)
    admin.wait_for_function(
        "() => { const i = document.querySelector('.thumb img'); return i && i.complete"
        " && i.naturalWidth > 0; }"
    )
    expect(admin.get_by_role("row", name="ct-nas")).to_contain_text("6")
    shot(admin, "study")

    admin.locator(".thumb").first.click()
    stage = admin.locator("#stage")
    expect(stage).to_have_attribute("data-loaded", "1")
    expect(admin.locator("#frame-label")).to_have_text(f"image 1 of {PATIENTS[0][3]}")
    stage.focus()
    admin.keyboard.press("ArrowDown")
    expect(stage).to_have_attribute("data-loaded", "2")
    admin.keyboard.press("End")
    expect(stage).to_have_attribute("data-loaded", str(PATIENTS[0][3]))

    admin.get_by_label("Measure").check()
    box = stage.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    admin.mouse.move(cx - 100, cy)
    admin.mouse.down()
    admin.mouse.move(cx + 100, cy, steps=5)
    admin.mouse.up()
    expect(admin.locator("#measure")).to_contain_text("Length:")
    measured = admin.locator("#measure").inner_text()
    assert " mm" in measured or " px" in measured

    admin.get_by_label("Window/level").check()
    before = admin.get_by_label("Width").input_value()
    admin.mouse.move(cx, cy)
    admin.mouse.down()
    admin.mouse.move(cx + 60, cy + 20, steps=4)
    admin.mouse.up()
    expect(admin.get_by_label("Width")).not_to_have_value(before)
    admin.get_by_label("Preset").select_option(label="bone 300/1500")
    expect(admin.get_by_label("Width")).to_have_value("1500")
    admin.get_by_label("Zoom in").click()
    admin.get_by_label("Center").fill("40")
    admin.get_by_label("Width").fill("400")
    admin.get_by_label("Width").press("Enter")
    admin.wait_for_timeout(500)
    shot(admin, "viewer")


def mllp_send(port: int, text: str) -> str:
    """One message over MLLP; the acknowledgement's text."""
    frame = b"\x0b" + text.replace("\r\n", "\r").replace("\n", "\r").encode() + b"\x1c\r"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(frame)
        answer = b""
        while not answer.endswith(b"\x1c\r"):
            chunk = conn.recv(65536)
            assert chunk, f"the listener closed the connection: {answer!r}"
            answer += chunk
    return answer.strip(b"\x0b\x1c\r").decode()


def test_the_live_hl7_feed_shows_a_message_and_its_fields_by_name(admin: Page, site: Site) -> None:
    admin.goto(f"{site.base}/messages")
    expect(admin.locator("#feed tbody")).not_to_contain_text("Loading")
    text = (FIXTURES / "adt_a01.hl7").read_text(encoding="utf-8")
    ack = mllp_send(site.hl7_port, text)
    code = ack.split("MSA|")[1].split("|")[0]
    row = admin.locator("#feed tbody tr", has_text="MSG00001")
    expect(row).to_be_visible(timeout=15_000)  # the feed refreshes itself
    expect(row).to_contain_text("ADT^A01")
    expect(row.locator(".ack")).to_have_text(code)
    shot(admin, "messages")
    row.get_by_role("link").click()
    pid = admin.get_by_role("region", name="Segment PID (3)")
    expect(pid.get_by_role("row", name="PID-5 Patient Name")).to_contain_text("Brennan")
    shot(admin, "message")

    # a message without its PID is acknowledged, kept, and fails processing: a dead letter
    broken = "\r".join(
        line for line in text.splitlines() if line and not line.startswith("PID")
    ).replace("MSG00001", "MSG-BAD-1")
    mllp_send(site.hl7_port, broken)
    admin.goto(f"{site.base}/messages")
    failed = admin.locator("#failed tbody tr", has_text="MSG-BAD-1")
    for _ in range(60):
        if failed.count():
            break
        admin.wait_for_timeout(500)
        admin.reload()
    expect(failed).to_contain_text("PACS-601")
    shot(admin, "messages-failed")
    failed.get_by_role("button", name="Reprocess message").click()
    again = admin.locator("#reprocess-result")
    expect(again).to_have_text("1 messages queued for processing again.")


def test_the_audit_log_is_filtered(admin: Page, site: Site) -> None:
    admin.goto(f"{site.base}/audit?action=conflict.*")
    expect(admin.locator("#audit")).to_contain_text("conflict.resolve")
    expect(admin.locator("#audit")).not_to_contain_text("job.cancel")
    shot(admin, "audit")
    admin.goto(f"{site.base}/")  # after the runs: the chart and the success rate
    expect(
        admin.locator("#pipelines").get_by_role("row", name="property-assessment")
    ).to_contain_text("100.0 %")
    shot(admin, "overview-after-runs")


def test_a_viewer_sees_no_write_controls_and_the_api_refuses_its_writes(
    browser: Browser, site: Site
) -> None:
    _, token = site.store.api_keys.create("e2e viewer", Role.VIEWER)
    page = sign_in(browser, site, token)
    controls = (
        "button[data-start], button[data-cancel], button[data-retry], button[data-scan], "
        "#test-connection, #new-webhook, #resolve, #reconcile, #pipeline-text, "
        "button[data-reprocess], button[data-discard]"
    )
    for path in ("/", "/pacs-sync", "/jobs", "/conflicts", "/webhooks", "/imaging", "/messages"):
        page.goto(f"{site.base}{path}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator(controls)).to_have_count(0)
    page.goto(f"{site.base}/pacs-sync")
    shot(page, "viewer-role-pacs-sync")
    status = page.evaluate(
        """async () => {
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const r = await fetch('/api/v1/jobs', {method: 'POST', headers: {
            'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
            body: JSON.stringify({pipeline: 'property-assessment'})});
          return r.status;
        }"""
    )
    assert status == 403
    page.goto(f"{site.base}/audit")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.context.close()


@pytest.mark.parametrize("path", ["/", "/pacs-sync", "/jobs", "/imaging"])
def test_pages_read_at_tablet_width(browser: Browser, site: Site, path: str) -> None:
    page = sign_in(browser, site, site.admin_key, width=768, height=1024)
    page.goto(f"{site.base}{path}")
    expect(page.locator("main h1")).to_be_visible()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} is {overflow} px wider than the tablet"
    name = path.strip("/") or "overview"
    shot(page, f"tablet-{name}")
    page.context.close()
