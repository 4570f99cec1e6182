"""``/keys``: API keys (admin).  A token is shown once, when its key is made; only its
hash is kept, and a revoked key never verifies again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Admin, Audit, AuditEntry, StateDep
from pacsync.api.schemas_admin import KEY_ID, ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyRevoked
from pacsync.domain.access import Role
from pacsync.errors import InvalidState, NotFound

router = APIRouter(prefix="/keys", tags=["keys"], responses=AUTHENTICATED)
KeyId = Annotated[str, Path(pattern=KEY_ID, description="the key's id (psk_<id>_…)")]


@router.get("", summary="API keys, oldest first (never their tokens; admin)")
def list_keys(state: StateDep, _who: Admin, include_revoked: bool = True) -> list[ApiKey]:
    keys = state.store.api_keys.list(include_revoked=include_revoked)
    return [ApiKey.of(k) for k in keys]


@router.post(
    "",
    status_code=201,
    summary="Create an API key; its token is shown this once (admin)",
    responses=problems.responses(400),
)
def create(
    body: ApiKeyCreate,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("key.create", Role.ADMIN)],
) -> ApiKeyCreated:
    view, token = state.store.api_keys.create(body.name, body.role, body.rate_limit_per_min)
    entry.target = view.id
    entry.detail = {"name": view.name, "role": view.role.value}
    return ApiKeyCreated(**ApiKey.of(view).model_dump(), token=token)


@router.delete(
    "/{key_id}",
    summary="Revoke an API key (admin)",
    responses=problems.responses(404, 409),
)
def revoke(
    key_id: KeyId,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("key.revoke", Role.ADMIN, "key_id")],
) -> ApiKeyRevoked:
    keys = state.store.api_keys
    if not keys.revoke(key_id):
        if keys.get(key_id) is None:
            raise NotFound(f"no API key '{key_id}'", hint="List them: GET /api/v1/keys.")
        raise InvalidState(f"API key '{key_id}' is already revoked")
    return ApiKeyRevoked(id=key_id)
