"""Dependencies of the routes: who is calling, what they may do, and the audit record.

- ``Viewer``, ``Operator``, ``Admin``: the authenticated :class:`Principal`, 403 when
  its role is lower (``Annotated`` aliases: ``who: Operator``).
- ``Audit(action, role, target=path_param)``: for every write and every read of
  patient data; checks the role like the aliases, then records who did it, from
  where, on what, and how it ended (``ok``, ``denied``, or the PACS code / HTTP
  status it failed with); a request whose parameters or body do not validate
  never reached the route and is not recorded.  The route may set
  ``entry.target``, ``entry.detail`` and ``entry.outcome``::

      def cancel(job_id: str, entry: Annotated[AuditEntry, Audit("job.cancel",
                 Role.OPERATOR, "job_id")]) -> ...

- ``StateDep``, ``StoreDep``, ``SettingsDep``: what the app holds.

Authentication: ``Authorization: Bearer psk_…`` is an API key, anything else a
JWT when an issuer is configured.  Each caller has a token bucket (its key's
``rate_limit_per_min`` or the default); failed attempts use the client
address's bucket, so guessing keys is slow too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pacsync import bootstrap
from pacsync.api import problems
from pacsync.api.problems import ProblemException
from pacsync.api.rate_limit import retry_after
from pacsync.api.state import ApiState
from pacsync.config import Settings
from pacsync.domain.access import Principal, Role
from pacsync.errors import AuthenticationFailed, PacsyncError, RateLimited
from pacsync.security.api_keys import PREFIX as KEY_PREFIX

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (psk_…, from `pacsync keys create`) or a JWT from the "
    "configured identity provider.",
)
# what any authenticated route may answer (400: a NUL character in the query or body)
AUTHENTICATED = problems.responses(400, 401, 403, 429, 500)
_KEY_HINT = "Send 'Authorization: Bearer <API key>'; create a key with `pacsync keys create`."


async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(api_state)]


async def _store(state: StateDep) -> bootstrap.Store:
    return state.store


async def _settings(state: StateDep) -> Settings:
    return state.settings


StoreDep = Annotated[bootstrap.Store, Depends(_store)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _unauthenticated(state: ApiState, request: Request, message: str, hint: str) -> Exception:
    wait = state.limiter.take(f"ip:{client_address(request)}")
    if wait is not None:
        return _too_many(wait)
    return ProblemException(
        401, AuthenticationFailed(message, hint=hint), {"WWW-Authenticate": "Bearer"}
    )


def refusal(
    state: ApiState, address: str | None, error: PacsyncError, status: int, what: str
) -> ProblemException:
    """The answer to a refused unauthenticated message (a webhook, a notification): it
    costs its sender's address a token, so guessing secrets is slow; 429 once they are
    spent."""
    wait = state.limiter.take(f"ip:{address}")
    if wait is not None:
        return ProblemException(
            429, RateLimited(f"too many refused {what}"), {"Retry-After": retry_after(wait)}
        )
    return ProblemException(status, error)


def _too_many(wait_s: float) -> ProblemException:
    seconds = retry_after(wait_s)
    return ProblemException(
        429,
        RateLimited(f"too many requests; try again in {seconds} s"),
        {"Retry-After": seconds},
    )


async def principal(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller (401 without a valid token, 429 over its rate).

    Runs on the event loop; store lookups and JWKS fetches go to the thread pool,
    and a key verified in the last seconds needs neither (see key_cache)."""
    if credentials is None or not credentials.credentials:
        raise _unauthenticated(state, request, "no bearer token", _KEY_HINT)
    token = credentials.credentials
    if token.startswith(KEY_PREFIX):
        key = state.keys.get(token)
        if key is None:
            key = await run_in_threadpool(state.store.api_keys.verify, token)
            if key is None:
                raise _unauthenticated(state, request, "unknown or revoked API key", _KEY_HINT)
            state.keys.keep(token, key)
        who = key.principal()
    elif state.verifier is not None:
        try:
            who = await run_in_threadpool(state.verifier.verify, token)
        except AuthenticationFailed as error:
            raise _unauthenticated(state, request, error.message, error.hint) from None
    else:
        raise _unauthenticated(
            state, request, "not an API key, and no JWT issuer is configured", _KEY_HINT
        )
    wait = state.limiter.take(who.subject, who.rate_limit_per_min)
    if wait is not None:
        raise _too_many(wait)
    request.state.principal = who
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]


def _forbidden(who: Principal, needed: Role) -> ProblemException:
    return ProblemException(
        403,
        AuthenticationFailed(
            f"{who.subject} has role {who.role.value}; this needs {needed.value}",
            hint=f"Use a key or token with role {needed.value} or higher.",
        ),
    )


def require(needed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, when its role includes ``needed`` (else 403); like
    :func:`audited`'s, it names that role in ``required_role``."""

    async def allowed(who: PrincipalDep) -> Principal:
        if not who.role.allows(needed):
            raise _forbidden(who, needed)
        return who

    allowed.required_role = needed  # type: ignore[attr-defined]  # read by tests
    return allowed


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


@dataclass
class AuditEntry:
    """The audit record of one request, filled in by the route."""

    action: str
    target: str | None
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"


def record_audit(state: ApiState, request: Request, entry: AuditEntry, outcome: str) -> None:
    """Append ``entry`` with ``outcome`` to the audit trail; a write also refreshes the
    polled pages (see snapshots)."""
    if request.method != "GET":
        state.snapshots.clear()
    state.store.audit.record(
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        outcome=outcome,
        detail=entry.detail,
        source_ip=client_address(request),
    )


def audited(action: str, needed: Role, target: str | None = None) -> Callable[..., Any]:
    """The dependency behind :func:`Audit`."""

    def dependency(request: Request, state: StateDep, who: PrincipalDep) -> Iterator[AuditEntry]:
        found = request.path_params.get(target) if target else None
        entry = AuditEntry(action, None if found is None else str(found), who.subject)

        def record(outcome: str) -> None:
            if request.method != "GET":  # a write: polled pages and keys are read afresh
                state.keys.clear()
            record_audit(state, request, entry, outcome)

        if not who.role.allows(needed):
            record("denied")
            raise _forbidden(who, needed)
        try:
            yield entry
        except RequestValidationError:
            raise  # the request was refused before the route ran: nothing to record
        except PacsyncError as error:
            record(error.code)
            raise
        except HTTPException as exc:
            record(f"HTTP {exc.status_code}")
            raise
        except Exception:
            record("error")
            raise
        record(entry.outcome)

    dependency.audit_action = action  # type: ignore[attr-defined]  # found by tests
    dependency.required_role = needed  # type: ignore[attr-defined]
    return dependency


def Audit(action: str, needed: Role, target: str | None = None) -> Any:
    """``Annotated[AuditEntry, Audit("job.cancel", Role.OPERATOR, "job_id")]``: the audit
    record of this request, written when the route function ends (before responding)."""
    return Depends(audited(action, needed, target), scope="function")
