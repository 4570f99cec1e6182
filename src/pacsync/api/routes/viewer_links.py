"""``/viewer-links``: the signed viewer links issued, and their revocation.

A link sent to the wrong person is revoked by its id, or every active link of a study
at once; DICOMweb refuses a revoked link from then on (see ``dicomweb_access``).
Listing and revoking are for operators, and audited (``viewer_link.list``,
``viewer_link.revoke``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep
from pacsync.api.dicomweb import UID
from pacsync.api.dicomweb_access import link_statuses
from pacsync.api.schemas import Model, UtcTime
from pacsync.db.viewer_links import ViewerLinkRecord
from pacsync.domain.access import Role
from pacsync.errors import NotFound

router = APIRouter(tags=["viewer links"], responses=AUTHENTICATED)
LinkId = Annotated[
    str,
    Path(pattern=r"^[0-9A-Za-z_-]{1,32}$", description="the link's id (``link_id``)"),
]


class ViewerLinkEntry(Model):
    link_id: str = Field(examples=["9f2c4e1a7b3d5c60"])
    study_uid: str
    issued_to: str = Field(description="who asked for the link", examples=["key:0123456789abcdef"])
    issued_at: UtcTime
    expires_at: UtcTime
    revoked_at: UtcTime | None
    revoked_by: str | None
    active: bool = Field(description="neither revoked nor expired")

    @classmethod
    def of(cls, link: ViewerLinkRecord) -> ViewerLinkEntry:
        return cls(
            link_id=link.link_id,
            study_uid=link.study_uid,
            issued_to=link.issued_to,
            issued_at=link.issued_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            revoked_by=link.revoked_by,
            active=link.active(),
        )


class ViewerLinkList(Model):
    items: list[ViewerLinkEntry] = Field(description="newest first")


class ViewerLinksRevoked(Model):
    study_uid: str
    revoked: int = Field(description="the study's active links now revoked")


@router.get("/viewer-links", summary="Viewer links issued, newest first (operator)")
def list_links(
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("viewer_link.list", Role.OPERATOR)],
    *,
    study: Annotated[str | None, Query(pattern=r"^[0-9.]{1,64}$")] = None,
    active: Annotated[bool, Query(description="only links neither revoked nor expired")] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ViewerLinkList:
    links = state.store.viewer_links.list(study_uid=study, active_only=active, limit=limit)
    entry.detail = {"study": study, "active": active, "returned": len(links)}
    return ViewerLinkList(items=[ViewerLinkEntry.of(link) for link in links])


@router.delete(
    "/viewer-links/{link_id}",
    summary="Revoke a viewer link before it expires (operator)",
    responses=problems.responses(404, 409),
)
def revoke_link(
    link_id: LinkId,
    request: Request,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("viewer_link.revoke", Role.OPERATOR, "link_id")],
) -> ViewerLinkEntry:
    link = state.store.viewer_links.revoke(link_id, entry.actor)
    link_statuses(request).clear()
    entry.detail = {"study": link.study_uid}
    return ViewerLinkEntry.of(link)


@router.delete(
    "/studies/{uid}/viewer-links",
    summary="Revoke every active viewer link of a study (operator)",
    responses=problems.responses(404),
)
def revoke_study_links(
    uid: UID,
    request: Request,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("viewer_link.revoke", Role.OPERATOR, "uid")],
) -> ViewerLinksRevoked:
    count = state.store.viewer_links.revoke_study(uid, entry.actor)
    if not count:
        raise NotFound(
            f"study {uid} has no active viewer link",
            hint="List its links: GET /api/v1/viewer-links?study=UID&active=false",
        )
    link_statuses(request).clear()
    entry.detail = {"scope": "study", "revoked": count}
    return ViewerLinksRevoked(study_uid=uid, revoked=count)
