"""Configured connections; a URL's password is split out and kept sealed.

The stored URL never holds a password; :meth:`ConnectionStore.resolved_url`
puts it back for the code that connects.  Listings only say ``password_set``.
A secret elsewhere (a URL query parameter or an option named like one) could
not be sealed, so it is refused; :func:`masked` hides such values for display.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy import Engine, delete, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import connections
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest, NotFound
from pacsync.security import redaction
from pacsync.security.secrets import SecretBox

_t = connections.c
MASK = "***"
_SECRET_NAME = re.compile(r"pass(word|wd)?|pwd|secret|token|api_?key", re.IGNORECASE)
_SECRET_PAIR = re.compile(r"\b(pass(word|wd)?|pwd)\s*=", re.IGNORECASE)  # ODBC strings


@dataclass(frozen=True)
class ConnectionView:
    name: str
    kind: str
    url: str  # without its password
    options: dict[str, Any]
    password_set: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def _view(row: Any) -> ConnectionView:
    return ConnectionView(
        name=row.name,
        kind=row.kind,
        url=row.url,
        options=dict(row.options or {}),
        password_set=row.secret is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without the password in its user info, and that password (decoded)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon:
        return url, None
    netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit(parts._replace(netloc=netloc)), unquote(password)


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (encoded) in its user info."""
    parts = urlsplit(url)
    user, at, hostport = parts.netloc.rpartition("@")
    if not at:
        user, hostport = "", parts.netloc
    netloc = f"{user}:{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


def _secret(name: str, value: Any) -> bool:
    return bool(_SECRET_NAME.search(name)) or (
        isinstance(value, str) and bool(_SECRET_PAIR.search(value))
    )


def _clear_options(options: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in options.items():
        if _secret(str(name), value):
            yield f"option '{prefix}{name}'"
        elif isinstance(value, Mapping):
            yield from _clear_options(value, f"{prefix}{name}.")


def secrets_in_clear(url: str, options: Mapping[str, Any]) -> builtins.list[str]:
    """Where ``url``'s query or ``options`` hold what looks like a secret (a name such as
    password, pwd, secret, token or api_key, or ``PWD=`` inside a value), never the value."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    found = [f"URL parameter '{k}'" for k, v in query if _secret(k, v)]
    return found + list(_clear_options(options))


def _masked_options(options: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for name, value in options.items():
        if _secret(str(name), value):
            shown[name] = MASK
        elif isinstance(value, Mapping):
            shown[name] = _masked_options(value)
        else:
            shown[name] = value
    return shown


def masked(url: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``url`` and ``options`` for display: secret-looking query values and options
    replaced by ``***`` (the user info's password is :func:`split_password`'s)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(_secret(k, v) for k, v in query):
        hidden = [(k, MASK if _secret(k, v) else v) for k, v in query]
        url = urlunsplit(parts._replace(query=urlencode(hidden, safe="*")))
    return url, _masked_options(options)


class ConnectionStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    def list(self) -> builtins.list[ConnectionView]:
        with translated("store"), self.engine.connect() as conn:
            return [_view(r) for r in conn.execute(select(connections).order_by(_t.name))]

    def get(self, name: str) -> ConnectionView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(connections).where(_t.name == name)).first()
        return None if row is None else _view(row)

    def put(
        self,
        name: str,
        kind: str,
        url: str,
        options: dict[str, Any] | None = None,
        password: str | None = None,
    ) -> ConnectionView:
        """Create or replace a connection.  A password in ``url`` or given as ``password``
        (which wins) is sealed; with neither, a stored password is kept; ``""`` clears it."""
        if not name.strip() or not kind.strip():
            raise InvalidRequest("a connection needs a name and a kind")
        if "://" not in url:
            raise InvalidRequest(
                f"connection '{name}': not a URL",
                hint="Give a URL such as postgresql+psycopg://user@host/db.",
            )
        clear = secrets_in_clear(url, options or {})
        if clear:
            raise InvalidRequest(
                f"connection '{name}': the {clear[0]} looks like a secret, and only the "
                "password is stored sealed",
                hint="Give the password as 'password' or in the URL (user:password@host); "
                "keep other secrets out of the URL's query and the options.",
            )
        bare, in_url = split_password(url)
        secret = password if password is not None else in_url
        redaction.remember(secret)
        now = utc_now()
        values: dict[str, Any] = {
            "kind": kind,
            "url": bare,
            "options": options or {},
            "updated_at": now,
        }
        if secret is not None:
            values["secret"] = self.box.seal(secret, _context(name)) if secret else None
        with translated("store"), self.engine.begin() as conn:
            changed = conn.execute(update(connections).where(_t.name == name).values(**values))
            if changed.rowcount == 0:
                conn.execute(
                    insert(connections).values(
                        name=name, created_at=now, **{"secret": None, **values}
                    )
                )
        found = self.get(name)
        assert found is not None
        return found

    def delete(self, name: str) -> bool:
        with translated("store"), self.engine.begin() as conn:
            return conn.execute(delete(connections).where(_t.name == name)).rowcount == 1

    def resolved_url(self, name: str) -> str:
        """The connection's URL with its password, for connecting."""
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(_t.url, _t.secret).where(_t.name == name)).first()
        if row is None:
            raise NotFound(
                f"no connection '{name}'", hint="List the connections: GET /api/v1/connections."
            )
        if row.secret is None:
            return str(row.url)
        return with_password(row.url, self.box.open(row.secret, _context(name)))


def _context(name: str) -> str:
    return f"connection:{name}"
