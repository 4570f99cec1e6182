"""Opening the pacsync store and bringing its schema to the newest migration."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.errors import translated

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0002"  # the newest revision in migrations/versions (a test keeps this true)


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
    with translated("store"), engine.begin() as conn:
        config.attributes["connection"] = conn
        if revision == "base":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)
