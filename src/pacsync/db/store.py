"""Opening the pacsync store and bringing its schema to the newest migration."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.errors import translated

MIGRATIONS = Path(__file__).parent / "migrations"


def open_store(url: str) -> Engine:
    """An engine on the store at ``url``, migrated to the newest schema."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def migrate(engine: Engine, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with translated("store"), engine.begin() as conn:
        config.attributes["connection"] = conn
        if revision == "base":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)
