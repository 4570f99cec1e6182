"""Who may read DICOMweb, and the audit of what they read.

A caller is either an API key or JWT of the viewer role or higher (``Authorization:
Bearer``), or a signed viewer link (``pvl_…``, see :mod:`pacsync.security.viewer_links`)
sent as a bearer token or as the ``token`` query parameter (what a viewer opened from
a link can send).  A link reads one study only: another study's routes answer 404
(nothing says that study exists) and searches only ever find the link's study.

A link opens its study only while it is on record (every link the API issues is)
and not revoked; otherwise 401.  A link's status is read from the store at most every
``REVOKED_TTL_S`` per link, not once a frame: a link revoked through this server's
API stops at once (revoking clears the answers), one revoked by another process
within that time.

Every access is audited: ``dicomweb.read`` with the study as target, ``dicomweb.search``
with the query; a viewer fetches hundreds of frames of a study, so an actor's reads of
the same study (or the same search) are recorded once a minute, not once a request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pacsync.api.deps import AuditEntry, StateDep, principal, record_audit, require
from pacsync.api.problems import ProblemException
from pacsync.api.remembered import Remembered
from pacsync.api.state import ApiState
from pacsync.domain.access import Principal, Role
from pacsync.errors import AuthenticationFailed, NotFound, PacsyncError
from pacsync.security.viewer_links import HINT as LINK_HINT
from pacsync.security.viewer_links import PREFIX as LINK_PREFIX
from pacsync.security.viewer_links import ViewerLink, ViewerLinks

AUDIT_EVERY_S = 60.0
REVOKED_TTL_S = 5.0
MAX_LINKS = 4096
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class WebAccess:
    """The caller of a DICOMweb route; ``study``: the only study a viewer link may read."""

    who: Principal
    study: str | None = None

    def allows(self, study_uid: str) -> bool:
        return self.study is None or self.study == study_uid

    def check(self, study_uid: str | None) -> None:
        if study_uid is not None and not self.allows(study_uid):
            raise NotFound(
                f"no indexed instance for {study_uid}",
                hint="A viewer link opens its own study only.",
            )


def viewer_links(request: Request) -> ViewerLinks:
    """The app's link signer (its key read once)."""
    app_state = request.app.state
    links: ViewerLinks | None = getattr(app_state, "viewer_links", None)
    if links is None:
        api: ApiState = app_state.api
        links = ViewerLinks.load(api.settings)
        app_state.viewer_links = links
    return links


class LinkStatuses(Remembered[str]):
    """Each link id's status in the store (active, revoked, unknown), remembered."""

    def __init__(
        self, ttl_s: float = REVOKED_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(ttl_s, clock, most=MAX_LINKS)


def link_statuses(request: Request) -> LinkStatuses:
    """The app's remembered link statuses."""
    app_state = request.app.state
    answers: LinkStatuses | None = getattr(app_state, "link_statuses", None)
    if answers is None:
        answers = LinkStatuses()
        app_state.link_statuses = answers
    return answers


_REFUSED = {
    "revoked": "the viewer link was revoked",
    "unknown": "the viewer link is not on record (issued elsewhere or before an upgrade)",
}


async def _refuse_unusable(request: Request, state: ApiState, link: ViewerLink) -> None:
    """A link opens its study only while it is on record and not revoked."""
    answers = link_statuses(request)
    status = answers.get(link.link_id)
    if status is None:
        status = await run_in_threadpool(state.store.viewer_links.status, link.link_id)
        answers.keep(link.link_id, status)
    if status in _REFUSED:
        failed = AuthenticationFailed(_REFUSED[status], hint=LINK_HINT)
        raise ProblemException(401, failed, {"WWW-Authenticate": "Bearer"})


class _Throttle:
    """When each (actor, action, target) was last audited."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def due(self, key: tuple[str, str, str]) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -AUDIT_EVERY_S) < AUDIT_EVERY_S:
                return False
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[key] = now
            return True


_throttle = _Throttle()
_viewer = require(Role.VIEWER)


async def _caller(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> WebAccess:
    token = credentials.credentials if credentials is not None else None
    if token is None or token.startswith(LINK_PREFIX):
        token = token or request.query_params.get("token")
    if token is not None and token.startswith(LINK_PREFIX):
        try:
            link = await run_in_threadpool(viewer_links(request).verify, token)
        except AuthenticationFailed as failed:
            raise ProblemException(401, failed, {"WWW-Authenticate": "Bearer"}) from None
        await _refuse_unusable(request, state, link)
        who = Principal(subject=f"link:{link.link_id}:{link.issued_to}", role=Role.VIEWER)
        request.state.principal = who
        return WebAccess(who, link.study_uid)
    who = await principal(request, state, credentials)
    return WebAccess(await _viewer(who))


_caller.authenticates = True  # type: ignore[attr-defined]  # read by tests
_caller.required_role = Role.VIEWER  # type: ignore[attr-defined]


def _audited(request: Request, state: StateDep, access: Annotated[WebAccess, Depends(_caller)]
             ) -> Iterator[WebAccess]:  # fmt: skip
    study = request.path_params.get("study")
    action = "dicomweb.search" if study is None else "dicomweb.read"
    target = study if study is not None else None
    query = str(request.url.query)
    key = (access.who.subject, action, study or f"{request.url.path}?{query}")
    entry = AuditEntry(action, target, access.who.subject, {"path": request.url.path})
    if query and study is None:
        entry.detail["query"] = query[:500]
    if access.study is not None:
        entry.detail["viewer_link"] = True
    try:
        access.check(study)  # a link asking for another study: 404, and recorded
        yield access
    except PacsyncError as error:  # a failed read is recorded at once, with its code
        record_audit(state, request, entry, error.code)
        raise
    except HTTPException as error:
        record_audit(state, request, entry, f"HTTP {error.status_code}")
        raise
    if _throttle.due(key):
        record_audit(state, request, entry, "ok")


WebViewer = Annotated[WebAccess, Depends(_audited, scope="function")]
