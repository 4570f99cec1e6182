"""API keys in the store: created with their token shown once, verified by id and hash."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import api_keys
from pacsync.domain.access import Principal, Role
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest
from pacsync.security import api_keys as keys

_t = api_keys.c
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often


@dataclass(frozen=True)
class ApiKeyView:
    """A key as listed: never its token or hash."""

    id: str
    name: str
    role: Role
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rate_limit_per_min: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(
            subject=f"key:{self.id}",
            role=self.role,
            key_id=self.id,
            rate_limit_per_min=self.rate_limit_per_min,
        )


def _view(row: Any) -> ApiKeyView:
    return ApiKeyView(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        rate_limit_per_min=row.rate_limit_per_min,
    )


def _role(role: Role | str) -> Role:
    parsed = Role.parse(str(role))
    if parsed is None:
        valid = ", ".join(r.value for r in Role)
        raise InvalidRequest(f"unknown role '{role}'", hint=f"Use one of: {valid}.")
    return parsed


class ApiKeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, name: str, role: Role | str, rate_limit_per_min: int | None = None
    ) -> tuple[ApiKeyView, str]:
        """A new key and its token; the token is not kept and cannot be shown again."""
        if not name.strip():
            raise InvalidRequest("an API key needs a name", hint="Name it after who will use it.")
        if rate_limit_per_min is not None and rate_limit_per_min < 1:
            raise InvalidRequest(
                f"rate limit {rate_limit_per_min} is not a positive number of requests a minute",
                hint="Give a limit of 1 or more, or none for the server's default.",
            )
        issued = keys.issue()
        view = ApiKeyView(
            id=issued.key_id,
            name=name.strip(),
            role=_role(role),
            created_at=utc_now(),
            last_used_at=None,
            revoked_at=None,
            rate_limit_per_min=rate_limit_per_min,
        )
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=view.id,
                    name=view.name,
                    role=view.role.value,
                    token_hash=issued.token_hash,
                    created_at=view.created_at,
                    rate_limit_per_min=rate_limit_per_min,
                )
            )
        return view, issued.token

    def verify(self, token: str) -> ApiKeyView | None:
        """The active key ``token`` belongs to, or None (malformed, unknown, wrong, revoked)."""
        key_id = keys.parse(token)
        if key_id is None:
            return None
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(_t.id == key_id)).first()
        if row is None or not keys.matches(token, row.token_hash) or row.revoked_at is not None:
            return None
        view = _view(row)
        now = utc_now()
        if view.last_used_at is None or now - view.last_used_at >= TOUCH_EVERY:
            with translated("store"), self.engine.begin() as conn:
                conn.execute(
                    update(api_keys)
                    .where(
                        _t.id == key_id,
                        or_(_t.last_used_at.is_(None), _t.last_used_at <= now - TOUCH_EVERY),
                    )
                    .values(last_used_at=now)
                )
            view = replace(view, last_used_at=now)
        return view

    def get(self, key_id: str) -> ApiKeyView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(_t.id == key_id)).first()
        return None if row is None else _view(row)

    def list(self, *, include_revoked: bool = True) -> builtins.list[ApiKeyView]:
        stmt = select(api_keys).order_by(_t.created_at, _t.id)
        if not include_revoked:
            stmt = stmt.where(_t.revoked_at.is_(None))
        with translated("store"), self.engine.connect() as conn:
            return [_view(row) for row in conn.execute(stmt)]

    def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False when there is no such active key."""
        with translated("store"), self.engine.begin() as conn:
            result = conn.execute(
                update(api_keys)
                .where(_t.id == key_id, _t.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
        return result.rowcount == 1

    def count_active(self) -> int:
        stmt = select(func.count()).select_from(api_keys).where(_t.revoked_at.is_(None))
        with translated("store"), self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())
