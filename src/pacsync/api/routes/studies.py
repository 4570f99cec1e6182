"""``/studies/{uid}``: a study's workflow timeline (what pacsync observed of it) and
the link to a viewer of it; ``pages`` serves the minimal viewer page at
``/viewer/{uid}``, outside the API (it reads the study over pacsync's DICOMweb with
the key the user gives it).

The viewer link carries a signed viewer link token (``pvl_…``, bound to the study,
expiring after ``PACSYNC_VIEWER_LINK_MINUTES``): in the external viewer's URL where
its template says ``{token}`` (OHIF: ``&token={token}``, sent back as a bearer token),
in the ``#key=`` fragment of pacsync's own page.  Each link issued is audited
(``viewer_link.issue``), and so is each use (see ``dicomweb_access``).  Each link is
recorded by its id, so it can be revoked before it expires (see ``viewer_links``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.dicomweb import UID
from pacsync.api.dicomweb_access import viewer_links
from pacsync.api.schemas import Model, UtcTime
from pacsync.api.viewer_page import page
from pacsync.db.study_events import StudyEvents
from pacsync.domain.access import Role
from pacsync.errors import NotFound

router = APIRouter(tags=["studies"], responses=AUTHENTICATED)
pages = APIRouter()
TEMPLATE_FIELD = "{study_uid}"
TOKEN_FIELD = "{token}"


class WorkflowEvent(Model):
    event: str = Field(examples=["received"])
    source: str = Field(description="the archive or DICOM node", examples=["inbox"])
    at: UtcTime = Field(description="when it happened; received: the last instance")
    first_at: UtcTime | None = Field(description="received: the first instance")
    instances: int | None
    detail: dict[str, Any]


class StudyWorkflow(Model):
    study_uid: str
    status: str = Field(
        examples=["received"],
        description="unknown, scheduled, receiving, received, retrieved, indexed or sent",
    )
    indexed_instances: int | None = Field(
        description="the study's instances in the index; null: in no archive's index"
    )
    events: list[WorkflowEvent] = Field(description="oldest first")


class ViewerLink(Model):
    url: str = Field(examples=["https://pacsync.example.org/viewer/1.2.840.99.1#key=pvl_…"])
    expires_at: UtcTime = Field(description="when the link's token stops opening the study")
    link_id: str = Field(description="what revoking the link names", examples=["9f2c4e1a7b3d5c60"])


@router.get(
    "/studies/{uid}/workflow",
    summary="A study's workflow timeline: scheduled, received, indexed, retrieved, sent",
    responses=problems.responses(404),
)
def study_workflow(uid: UID, state: StateDep, _who: Viewer) -> StudyWorkflow:
    return StudyWorkflow.model_validate(StudyEvents(state.store.engine).workflow(uid).as_dict())


@router.get(
    "/studies/{uid}/viewer",
    summary="A viewer URL opening one indexed study without a login (a signed, expiring link)",
    responses=problems.responses(404),
)
def study_viewer(
    uid: UID,
    request: Request,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("viewer_link.issue", Role.VIEWER, "uid")],
) -> ViewerLink:
    if StudyEvents(state.store.engine).indexed_instances(uid) is None:
        raise NotFound(f"no archive holds study {uid}", hint="Find studies with QIDO-RS.")
    lifetime_s = max(state.settings.viewer_link_minutes, 1) * 60
    token, link = viewer_links(request).issued(uid, entry.actor, lifetime_s)
    expires_at = dt.datetime.fromtimestamp(link.expires_at, dt.UTC)
    state.store.viewer_links.record(link.link_id, uid, entry.actor, expires_at.replace(tzinfo=None))
    entry.detail = {"expires_at": expires_at.isoformat(timespec="seconds"), "link": link.link_id}
    template = state.settings.viewer_url_template
    if template:
        url = template.replace(TEMPLATE_FIELD, quote(uid)).replace(TOKEN_FIELD, quote(token))
    else:
        url = f"{request.url_for('viewer_page', uid=uid)}#key={token}"
    return ViewerLink(url=url, expires_at=expires_at, link_id=link.link_id)


@pages.get("/viewer/{uid}", response_class=HTMLResponse, name="viewer_page")
def viewer_page(uid: UID) -> HTMLResponse:
    """The page itself holds no patient data: its script asks the API with the key."""
    body, headers = page(uid)
    return HTMLResponse(body, headers=headers)
