"""``/studies/{uid}``: a study's workflow timeline (what pacsync observed of it) and
the link to a viewer of it; ``pages`` serves the minimal viewer page at
``/viewer/{uid}``, outside the API (it reads the study over pacsync's DICOMweb with
the key the user gives it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, StateDep, Viewer
from pacsync.api.dicomweb import UID
from pacsync.api.schemas import Model, UtcTime
from pacsync.api.viewer_page import page
from pacsync.db.study_events import StudyEvents
from pacsync.errors import NotFound

router = APIRouter(tags=["studies"], responses=AUTHENTICATED)
pages = APIRouter()
TEMPLATE_FIELD = "{study_uid}"


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
    url: str = Field(examples=["https://pacsync.example.org/viewer/1.2.840.99.1"])


@router.get(
    "/studies/{uid}/workflow",
    summary="A study's workflow timeline: scheduled, received, indexed, retrieved, sent",
    responses=problems.responses(404),
)
def study_workflow(uid: UID, state: StateDep, _who: Viewer) -> StudyWorkflow:
    return StudyWorkflow.model_validate(StudyEvents(state.store.engine).workflow(uid).as_dict())


@router.get(
    "/studies/{uid}/viewer",
    summary="The URL of a viewer of an indexed study (an external one when configured)",
    responses=problems.responses(404),
)
def study_viewer(uid: UID, request: Request, state: StateDep, _who: Viewer) -> ViewerLink:
    if StudyEvents(state.store.engine).indexed_instances(uid) is None:
        raise NotFound(f"no archive holds study {uid}", hint="Find studies with QIDO-RS.")
    template = state.settings.viewer_url_template
    if template:
        return ViewerLink(url=template.replace(TEMPLATE_FIELD, uid))
    return ViewerLink(url=str(request.url_for("viewer_page", uid=uid)))


@pages.get("/viewer/{uid}", response_class=HTMLResponse, name="viewer_page")
def viewer_page(uid: UID) -> HTMLResponse:
    """The page itself holds no patient data: its script asks the API with the key."""
    body, headers = page(uid)
    return HTMLResponse(body, headers=headers)
