"""The migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from pacsync.db.store import HEAD, MIGRATIONS, current_revision, migrate, open_store
from pacsync.db.tables import metadata


def test_migrated_store_matches_the_table_definitions(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_migrations_run_down_and_up_again(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine, "head")
    assert "dead_letters" in inspect(engine).get_table_names()
    engine.dispose()


def test_head_constant_is_the_newest_migration(tmp_path: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    assert current_revision(engine) == HEAD
    engine.dispose()
