"""Imaging: patient search, studies across archives, series thumbnails and the study viewer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from pacsync.api.dashboard import views
from pacsync.api.dashboard.auth import (
    CallerDep,
)
from pacsync.api.dashboard.rendering import audit_read, render, state_of

router = APIRouter(include_in_schema=False)


# -- imaging -------------------------------------------------------------------------------


@router.get("/imaging", response_class=HTMLResponse)
def imaging_page(request: Request, caller: CallerDep) -> HTMLResponse:
    state = state_of(request)
    archives = state.store.archives.list()
    scans = [
        views.job_summary(j)
        for j in [
            *state.store.jobs.recent(status="running", limit=50),
            *state.store.jobs.recent(status="queued", limit=50),
        ]
        if j.kind == "archive-scan"
    ]
    return render(request, "imaging.html", caller, archives=archives, scans=scans)


@router.get("/imaging/studies/{uid}", response_class=HTMLResponse)
def study_page(
    request: Request, caller: CallerDep, uid: Annotated[str, PathParam(pattern=r"^[0-9.]{1,64}$")]
) -> HTMLResponse:
    state = state_of(request)
    located = state.store.archive_search.locate(uid)
    if not located:
        return render(request, "missing.html", caller, what=f"study {uid}", code=404)
    audit_read(request, caller, "study.read", uid)
    first = located[0]
    places: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[str, Any]] = {}
    for row in located:
        place = places.setdefault(
            row["archive"], {"archive": row["archive"], "kind": row["kind"], "root": row["root"],
                             "instances": 0, "bytes": 0},
        )  # fmt: skip
        place["instances"] += 1
        place["bytes"] += int(row["size"] or 0)
        s = series.setdefault(
            row["series_instance_uid"],
            {"uid": row["series_instance_uid"], "number": row["series_number"],
             "modality": row["modality"], "description": row["series_description"],
             "instances": 0, "archives": set()},
        )  # fmt: skip
        s["instances"] += 1
        s["archives"].add(row["archive"])
    ordered = sorted(series.values(), key=lambda s: (s["number"] is None, s["number"] or 0))
    return render(
        request, "study.html", caller, study=first, uid=uid, places=places.values(),
        series=ordered,
    )  # fmt: skip


@router.get("/imaging/viewer/{uid}", response_class=HTMLResponse)
def viewer_page(
    request: Request, caller: CallerDep, uid: Annotated[str, PathParam(pattern=r"^[0-9.]{1,64}$")]
) -> HTMLResponse:
    return render(request, "viewer.html", caller, uid=uid)
