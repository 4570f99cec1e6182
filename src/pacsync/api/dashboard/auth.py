"""Who is looking at a dashboard page: the session's token verified the way the API
verifies a bearer token (:func:`pacsync.api.deps.principal`), and the login and
logout forms."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from pacsync.api import deps
from pacsync.api.dashboard.session import COOKIE, Session, session_of
from pacsync.api.problems import ProblemException
from pacsync.api.state import ApiState
from pacsync.domain.access import Principal, Role
from pacsync.security.secrets import SecretBox


class LoginRequired(Exception):
    """No session, or its token no longer verifies: the page answers with the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Caller:
    who: Principal
    session: Session

    @property
    def role(self) -> Role:
        return self.who.role

    @property
    def can_operate(self) -> bool:
        return self.who.role.allows(Role.OPERATOR)

    @property
    def can_admin(self) -> bool:
        return self.who.role.allows(Role.ADMIN)


def box_of(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.dashboard_box
    return box


async def verify(request: Request, state: ApiState, token: str) -> Principal | None:
    """The principal ``token`` names, or None when it does not verify (429 is raised)."""
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    try:
        return await deps.principal(request, state, credentials)
    except ProblemException as refused:
        if refused.status_code == 429:
            raise
        return None


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


async def caller(request: Request) -> Caller:
    """The dependency of every page: the verified caller, else :class:`LoginRequired`."""
    state: ApiState = request.app.state.api
    session = session_of(request, box_of(request))
    if session is None:
        raise LoginRequired(login_url(request))
    who = await verify(request, state, session.token)
    if who is None:
        raise LoginRequired(login_url(request))
    found = Caller(who, session)
    request.state.dashboard_caller = found
    return found


CallerDep = Annotated[Caller, Depends(caller)]


def require(caller: Caller, needed: Role) -> None:
    """Pages of a higher role than the caller's are refused (and say so)."""
    if not caller.role.allows(needed):
        raise PageForbidden(needed)


class PageForbidden(Exception):
    def __init__(self, needed: Role) -> None:
        super().__init__(needed.value)
        self.needed = needed


def safe_next(value: str | None) -> str:
    """Only a path of this site (no scheme, no other host) is followed after login."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


__all__ = ["COOKIE", "Caller", "CallerDep", "LoginRequired", "PageForbidden", "caller"]
