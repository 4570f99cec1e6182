"""Fixtures shared by every test folder: real database servers, the CLI, the recipe.

Integration tests talk to real servers on loopback (PostgreSQL and MariaDB).  Each
test gets fresh databases named ``pacsync_it_<random>``, dropped at teardown, so
runs never see each other's data, even concurrent ones on the same servers.

A server that cannot be reached skips the tests that need it, with the reason,
except when ``CI`` is set: then it is a failure, so CI never passes by skipping.
The servers can be pointed elsewhere with ``PACSYNC_TEST_POSTGRES_URL`` and
``PACSYNC_TEST_MARIADB_URL`` (an administrative URL; its database is only used
to connect).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from availability import unavailable

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "property-assessment"
PACSYNC = Path(sys.executable).parent / "pacsync"

POSTGRES_URL = os.environ.get(
    "PACSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("PACSYNC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

#: Variables of the environment a test must not inherit: pacsync settings and the
#: recipe's pipeline variables would otherwise leak from the developer's shell.
_INHERITED_NOT = (
    "LEGACY_DB_URL",
    "WAREHOUSE_URL",
    "PACS_SYNC_BATCH_SIZE",
    "PROPERTY_STRATEGY",
    "OWNER_STRATEGY",
    "VALUATION_STRATEGY",
    "STRUCTURE_STRATEGY",
)


# -- database servers -------------------------------------------------------------------------


class Server:
    """One database server on which tests create and drop throwaway databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin: URL = make_url(admin_url)
        self.backend = self.admin.get_backend_name()
        self.engine = sa.create_engine(
            self.admin,
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"connect_timeout": 3},
        )
        self.created: set[str] = set()

    @property
    def label(self) -> str:
        return f"{self.backend} at {self.admin.host}:{self.admin.port}"

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def url(self, database: str, **changes: Any) -> str:
        return self.admin.set(database=database, **changes).render_as_string(hide_password=False)

    def create(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"pacsync_it_{secrets.token_hex(5)}"
        charset = " CHARACTER SET utf8mb4" if self.backend != "postgresql" else ""
        self.execute(f"CREATE DATABASE {self.quote(name)}{charset}")
        self.created.add(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None
        assert name.startswith("pacsync_it_"), f"refusing to drop {name}"
        force = " WITH (FORCE)" if self.backend == "postgresql" else ""
        self.execute(f"DROP DATABASE IF EXISTS {self.quote(name)}{force}")
        self.created.discard(name)

    def drop_all(self) -> None:
        for name in sorted(self.created):
            self.drop(self.url(name))

    def execute(self, sql: str) -> None:
        """One administrative statement (no parameters; ``%`` is taken literally)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text(sql))

    def quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote_identifier(name)


def _server(admin_url: str) -> Iterator[Server]:
    server = Server(admin_url)
    try:
        server.ping()
    except sa.exc.SQLAlchemyError as exc:
        server.engine.dispose()
        first = str(getattr(exc, "orig", exc) or exc).splitlines()[0]
        unavailable(f"{server.label} is not reachable: {first}")
    try:
        yield server
    finally:
        server.drop_all()
        server.engine.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """The PostgreSQL server (session-wide); ``create()``/``drop()`` databases on it."""
    yield from _server(POSTGRES_URL)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Server]:
    """The MariaDB server (session-wide); ``create()``/``drop()`` databases on it."""
    yield from _server(MARIADB_URL)


@pytest.fixture
def pg_url(postgres: Server) -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test."""
    url = postgres.create()
    yield url
    postgres.drop(url)


@pytest.fixture
def mariadb_url(mariadb: Server) -> Iterator[str]:
    """URL of a fresh MariaDB database, dropped after the test."""
    url = mariadb.create()
    yield url
    mariadb.drop(url)


@pytest.fixture
def new_pg_url(postgres: Server) -> Iterator[Callable[[], str]]:
    """``new_pg_url()``: one more fresh PostgreSQL database, dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(postgres.create())
        return made[-1]

    yield make
    for url in made:
        postgres.drop(url)


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where ``pacsync`` processes keep compiled bytecode during the session.

    Without it, under PYTHONDONTWRITEBYTECODE, every process compiles SQLAlchemy,
    pydantic and the rest again (about 0.8 s a process); the venv is left untouched.
    """
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def pacsync_env(tmp_path: Path, bytecode_cache: Path) -> dict[str, str]:
    """Environment for a ``pacsync`` process: its own store under ``tmp_path``.

    Wide output (COLUMNS) so that Rich tables are not truncated and can be read back.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PACSYNC_") and k not in _INHERITED_NOT
    }
    env.update(
        {
            "PACSYNC_HOME": str(tmp_path / "pacsync-home"),
            "COLUMNS": "200",
            "PYTHONPYCACHEPREFIX": str(bytecode_cache),
        }
    )
    for name in ("FORCE_COLOR", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


@dataclass
class Cli:
    """Runs the installed ``pacsync`` script as a real process."""

    env: dict[str, str]
    cwd: Path
    executable: Path = PACSYNC

    def command(self, *args: str | Path) -> list[str]:
        if not self.executable.is_file():
            pytest.fail(f"no pacsync script at {self.executable}; install the package in the venv")
        return [str(self.executable), *(str(a) for a in args)]

    def environment(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return {**self.env, **(extra or {})}

    def run(
        self, *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``pacsync ARGS`` to its end; the CompletedProcess (never raises on exit code)."""
        return subprocess.run(
            self.command(*args),
            env=self.environment(env),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    __call__ = run

    def start(
        self, *args: str | Path, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start ``pacsync ARGS`` in the background (output captured)."""
        return subprocess.Popen(
            self.command(*args),
            env=self.environment(env),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def pacsync(pacsync_env: dict[str, str], tmp_path: Path) -> Cli:
    """``pacsync("run", pipeline, env={...})`` -> CompletedProcess; ``pacsync.start(...)``."""
    return Cli(env=pacsync_env, cwd=tmp_path)


# -- the property-assessment recipe -----------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    folder: Path
    pipeline: Path
    generate: ModuleType
    mutate: ModuleType

    @property
    def schema(self) -> ModuleType:
        return self.generate.schema  # type: ignore[no-any-return]


def _load(name: str) -> ModuleType:
    module_name = f"pacsync_tests_recipe_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, RECIPE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def recipe() -> Recipe:
    """examples/property-assessment: its pipeline file and generate/mutate loaded by path."""
    return Recipe(
        folder=RECIPE,
        pipeline=RECIPE / "pipeline.yaml",
        generate=_load("generate"),
        mutate=_load("mutate"),
    )
