"""Engines for connection URLs, with timeouts and SQLite's WAL mode set up."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pacsync.errors import ConfigError

_TIMEOUT_ARG = {
    "postgresql": "connect_timeout",
    "mysql": "connect_timeout",
    "mariadb": "connect_timeout",
    "mssql": "login_timeout",
    "sqlite": "timeout",
}


def make_engine(url: str, *, connect_timeout: int = 10, **options: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL journaling and a busy timeout."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is not a number
        raise ConfigError(
            f"not a database URL: {redact(url)}",
            hint="Use a SQLAlchemy URL such as postgresql+psycopg://user@host/db",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = dict(options.pop("connect_args", {}))
    timeout_arg = _TIMEOUT_ARG.get(backend)
    if timeout_arg:
        connect_args.setdefault(timeout_arg, connect_timeout)
    if backend == "mssql" and parsed.get_driver_name() == "pymssql":
        connect_args.setdefault("timeout", max(connect_timeout * 30, 300))
    if backend == "sqlite":
        # A file, not a server: nothing to ping, and connections are kept rather than
        # reopened (a new connection costs its pragmas and may wait on the file's lock).
        options.setdefault("pool_pre_ping", False)
        options.setdefault("pool_size", 8)
        options.setdefault("max_overflow", 32)
        # the connection used last comes back first: its page cache is the warm one
        options.setdefault("pool_use_lifo", True)
    try:
        options.setdefault("pool_pre_ping", True)  # a restarted server costs no failed batch
        engine = create_engine(parsed, connect_args=connect_args, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"no driver for {parsed.drivername}",
            hint="Install the driver (pymssql, psycopg, pymysql, firebird-driver) in the venv.",
        ) from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL is a property of the file: switching needs a lock, so only when not yet set.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs (a database URL, or a
    connection of another kind such as ``file:/drops`` or ``mllp://host:2575``)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        pass
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
