"""Opening the pacsync store and bringing its schema to the newest migration."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.errors import translated

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0012"  # the newest revision in migrations/versions (a test keeps this true)


def open_store(url: str) -> Engine:
    """An engine on the store at ``url``, migrated to the newest schema."""
    engine = make_engine(url)
    if current_revision(engine) != HEAD:
        migrate(engine)
    return engine


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def migrate(engine: Engine, revision: str = "head") -> None:
    from alembic import command  # imported here: only a store that needs migrating pays for it
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with translated("store"), _one_at_a_time(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # held to commit: the next one sees the result
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('pacsync-store-schema'))"))
        config.attributes["connection"] = conn
        if revision == "base":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    """Processes starting together on a new SQLite store migrate it one after another."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrating", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
