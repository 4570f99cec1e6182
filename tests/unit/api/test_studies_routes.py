"""``/studies/{uid}/workflow``, ``/studies/{uid}/viewer`` and the viewer page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from pacsync.api.app import create_app
from pacsync.db.archive_tables import image_studies
from pacsync.db.study_events import StudyEvents
from pacsync.domain.access import Role
from pacsync.domain.study_workflow import Event

from .conftest import Api, TestClient, problem, settings_for

STUDY = "1.2.840.99.1"
T0 = dt.datetime(2026, 3, 1, 8, 0)


def index_study(api: Api, instances: int = 3) -> None:
    with api.store.engine.begin() as conn:
        conn.execute(insert(image_studies).values(
            archive="inbox", study_uid=STUDY, issuer="", patient_id="P1", name_folded="DOE",
            instance_count=instances, updated_at=T0))  # fmt: skip


def test_the_workflow_lists_the_timeline_and_its_status(api: Api) -> None:
    events = StudyEvents(api.store.engine)
    for n in range(3):
        events.record(STUDY, Event.RECEIVED, source="inbox", at=T0 + dt.timedelta(seconds=n))
    events.record(STUDY, Event.SENT, source="sectra", instances=3, at=T0 + dt.timedelta(hours=1))
    index_study(api)
    response = api.get(f"/studies/{STUDY}/workflow", as_=Role.VIEWER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["indexed_instances"]) == ("sent", 3)
    received, sent = body["events"]
    assert (received["event"], received["instances"]) == ("received", 3)
    assert received["first_at"].startswith("2026-03-01T08:00:00")
    assert received["at"].startswith("2026-03-01T08:00:02")
    assert (sent["event"], sent["source"]) == ("sent", "sectra")


def test_an_unknown_study_is_404_and_no_key_is_401(api: Api) -> None:
    problem(api.get("/studies/1.2.3/workflow"), 404, "PACS-104")
    problem(api.get("/studies/1.2.3/viewer"), 404, "PACS-104")
    problem(api.get(f"/studies/{STUDY}/workflow", as_=None), 401, "PACS-002")
    problem(api.get(f"/studies/{STUDY}/viewer", as_=None), 401, "PACS-002")


def test_the_viewer_link_is_pacsyncs_page_by_default(api: Api) -> None:
    index_study(api)
    response = api.get(f"/studies/{STUDY}/viewer", as_=Role.VIEWER)
    assert response.status_code == 200, response.text
    url, token = response.json()["url"].split("#key=")
    assert url.endswith(f"/viewer/{STUDY}")
    assert token.startswith("pvl_")  # a signed viewer link, never the caller's API key
    assert api.tokens[Role.VIEWER] not in response.text
    (issued,) = api.audit("viewer_link.issue")
    assert (issued["target"], issued["outcome"]) == (STUDY, "ok")
    page = api.client.get(url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'sha256-" in policy
    assert f'data-study="{STUDY}"' in page.text
    assert "<script src" not in page.text
    assert "http" not in page.text.split("<script>")[1]


def test_the_viewer_link_fills_the_configured_template(api: Api) -> None:
    index_study(api)
    template = "https://ohif.example.org/viewer?StudyInstanceUIDs={study_uid}&token={token}"
    settings = settings_for(api.settings.home.parent, viewer_url_template=template)
    with TestClient(create_app(settings, store=api.store)) as client:
        external = Api(client, api.store, settings, api.tokens)
        response = external.get(f"/studies/{STUDY}/viewer", as_=Role.VIEWER)
    url = response.json()["url"]
    assert url.startswith(f"https://ohif.example.org/viewer?StudyInstanceUIDs={STUDY}&token=pvl_")
    token = url.split("&token=")[1]
    # the token reads DICOMweb of this study only, without any other credential
    own = external.get(f"/dicomweb/studies?StudyInstanceUID={STUDY}", as_=None,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert own.status_code == 200, own.text
    other = external.get("/dicomweb/studies/1.2.3/metadata", as_=None,
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert other.status_code == 404, other.text
    anywhere = external.get("/dicomweb/studies", as_=None,
                            params={"token": token, "StudyInstanceUID": "1.2.3"})  # fmt: skip
    assert (anywhere.status_code, anywhere.json()) == (200, [])
    assert external.get("/jobs", as_=None, headers={"Authorization": f"Bearer {token}"}
                        ).status_code == 401  # fmt: skip


def test_the_viewer_page_refuses_a_path_that_is_not_a_uid(api: Api) -> None:
    assert api.client.get("/viewer/<script>").status_code in (404, 422)
