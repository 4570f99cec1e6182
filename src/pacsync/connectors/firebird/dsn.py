"""Where a Firebird database is: the two ways a connection names it.

* Firebird's own connection string, passed to the client library as written:
  ``host:/path/to/db.fdb``, ``host/3050:/path/to/db.fdb``, ``host:C:\\DATA\\DB.FDB``,
  ``inet://host:3050//path/to/db.fdb``, an alias (``host:legacy``) or a local path.
* A URL ``firebird://user:password@host:port/DATABASE`` (``firebird+firebird://`` and
  ``firebird+fdb://`` too, as SQLAlchemy writes them).  DATABASE is what follows the
  first slash after the host, as in SQLAlchemy: an absolute POSIX path therefore
  takes two slashes (``firebird://host//var/lib/firebird/data/legacy.fdb``), a
  Windows path or an alias one (``firebird://host/C:/DATA/LEGACY.FDB``,
  ``firebird://host/legacy``).  User and password may be percent-encoded; a
  ``?charset=WIN1252`` query sets the connection character set.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from pacsync.errors import ConfigError

URL_SCHEMES = ("firebird", "firebird+firebird", "firebird+fdb")
DEFAULT_PORT = 3050


@dataclass(frozen=True, slots=True)
class FirebirdDsn:
    """A connection string for the client library, with what a URL said besides."""

    dsn: str
    user: str | None = None
    password: str | None = None
    charset: str | None = None

    def __repr__(self) -> str:  # never show the password
        return f"FirebirdDsn({self.dsn!r}, user={self.user!r})"


def parse_dsn(value: str) -> FirebirdDsn:
    """The client-library connection string of a DSN or ``firebird://`` URL."""
    text = value.strip()
    if not text:
        raise ConfigError("empty Firebird DSN", hint="Give host:/path/to/database.fdb")
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in URL_SCHEMES:
        return FirebirdDsn(text)
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid port in Firebird URL: {exc}") from exc
    database = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not database:
        raise ConfigError(
            "Firebird URL without a database",
            hint="firebird://user:password@host:3050//path/to/database.fdb",
        )
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    location = f"{host}/{port or DEFAULT_PORT}:{database}" if host else database
    charset = parse_qs(parts.query).get("charset", [None])[-1]
    return FirebirdDsn(
        location,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        charset=charset,
    )
