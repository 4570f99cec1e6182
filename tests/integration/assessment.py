"""The property-assessment recipe as the integration tests see it.

- what the legacy tables and the target tables hold, keyed by record key;
- the recipe's mapping re-done by hand for a few fields, to compare with the target;
- the tables ``pacsync run`` prints, read back;
- the store and the reconciliation of a pipeline, opened in this process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pacsync import bootstrap
from pacsync.config import Settings, load_pipeline
from pacsync.db.jobs import JobView
from pacsync.db.workers import WorkerRegistry, WorkerView
from pacsync.domain.spec import PipelineSpec
from pacsync.sync.reconcile import EntityReport, reconcile

Key = tuple[Any, ...]
Rows = dict[Key, dict[str, Any]]

STRATEGY_VARIABLES = (
    "PROPERTY_STRATEGY",
    "OWNER_STRATEGY",
    "VALUATION_STRATEGY",
    "STRUCTURE_STRATEGY",
)


@dataclass(frozen=True)
class Entity:
    name: str
    source: str
    target: str
    source_key: str
    target_key: str


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity("properties", "Property", "properties", "PropertyID", "property_id"),
        Entity("owners", "PropertyOwner", "owners", "OwnerID", "owner_id"),
        Entity("valuations", "PropertyValue", "valuations", "ValueID", "valuation_id"),
        Entity("structures", "Structure", "structures", "StructureID", "structure_id"),
    )
}
FINGERPRINT = "_pacsync_fingerprint"


def engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


# -- what the databases hold -------------------------------------------------------------------


def legacy_rows(url: str, schema: Any) -> dict[str, Rows]:
    """Every legacy row, per entity, keyed by its source key (recipe column types)."""
    found: dict[str, Rows] = {}
    db = engine(url)
    try:
        with db.connect() as conn:
            for table in schema.TABLES:
                entity = next(e for e in ENTITIES.values() if e.source == table.name)
                found[entity.name] = {
                    (row[entity.source_key],): dict(row)
                    for row in conn.execute(sa.select(table)).mappings()
                }
    finally:
        db.dispose()
    return found


_reflected: dict[tuple[str, str], sa.Table] = {}


def target_rows(url: str, entity: str, *, live: bool = True) -> Rows:
    """Target rows of ``entity`` keyed by key (``live``: soft-deleted rows left out)."""
    spec = ENTITIES[entity]
    db = engine(url)
    try:
        with db.connect() as conn:
            table = _reflected.get((url, spec.target))
            if table is None:  # reflected once: every test has its own database
                table = sa.Table(spec.target, sa.MetaData(), autoload_with=conn)
                _reflected[(url, spec.target)] = table
            stmt = sa.select(table)
            if live:
                stmt = stmt.where(table.c.deleted_at.is_(None))
            return {(r[spec.target_key],): dict(r) for r in conn.execute(stmt).mappings()}
    finally:
        db.dispose()


def count(url: str, table: str, *, distinct: str | None = None) -> int:
    """Rows in ``table`` (0 while it does not exist yet); distinct values of a column."""
    db = engine(url)
    try:
        with db.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return 0
            quote = conn.dialect.identifier_preparer.quote
            what = f"COUNT(DISTINCT {quote(distinct)})" if distinct else "COUNT(*)"
            return int(conn.exec_driver_sql(f"SELECT {what} FROM {quote(table)}").scalar_one())
    finally:
        db.dispose()


# -- the mapping, by hand ---------------------------------------------------------------------

OWNER_TYPES = {"I": "individual", "C": "corporation", "T": "trust", "G": "government"}
CONDITIONS = {
    "G": "good", "GOOD": "good", "AVG": "average", "AVERAGE": "average", "A": "average",
    "P": "poor", "POOR": "poor", "F": "fair", "FAIR": "fair", "E": "excellent",
    "EXCELLENT": "excellent",
}  # fmt: skip


def _zip5(text: str | None) -> str | None:
    digits = re.sub(r"\D", "", text or "")
    return digits[:5] if len(digits) >= 5 else None


def _title(text: str | None) -> str | None:
    return None if text is None else " ".join(w.capitalize() for w in text.split())


def by_hand(entity: str, row: dict[str, Any]) -> dict[str, Any]:
    """A few target fields of a legacy row, computed here independently of pacsync."""
    if entity == "properties":
        return {
            "parcel_number": row["ParcelNumber"].strip().upper(),
            "city": _title(row["City"]),
            "state": "WA" if row["State"] is None else row["State"].strip().upper(),
            "zip_code": _zip5(row["ZipCode"]),
            "year_built": row["YearBuilt"] or None,
            "acreage": row["Acreage"],
            "legacy_modified_at": row["LastModified"],
        }
    if entity == "owners":
        return {
            "property_id": row["PropertyID"],
            "owner_name": " ".join(row["OwnerName"].split()).upper(),
            "owner_type": OWNER_TYPES.get((row["OwnerType"] or "").strip().upper(), "unknown"),
            "ownership_pct": row["OwnershipPercentage"],
            "legacy_modified_at": row["LastModified"],
        }
    if entity == "valuations":
        return {
            "property_id": row["PropertyID"],
            "tax_year": row["TaxYear"],
            "assessed_value": row["AssessedValue"],
            "total_value": (row["LandValue"] or Decimal(0))
            + (row["ImprovementValue"] or Decimal(0)),
            "legacy_modified_at": row["LastModified"],
        }
    return {
        "property_id": row["PropertyID"],
        "square_feet": row["SquareFootage"],
        "bathrooms": row["Bathrooms"],
        "condition": CONDITIONS.get((row["Condition"] or "").strip().upper(), "unknown"),
        "legacy_modified_at": row["LastModified"],
    }


def mismatches(entity: str, legacy: Rows, target: Rows, parked: set[Key]) -> list[str]:
    """How the live target differs from the legacy rows (parked ones set aside), mapped by hand."""
    problems = []
    wanted = set(legacy) - parked
    if set(target) != wanted:
        missing, extra = sorted(wanted - set(target)), sorted(set(target) - wanted)
        problems.append(f"{entity}: keys missing {missing[:10]}, unexpected {extra[:10]}")
    for key in sorted(wanted & set(target)):
        expected = by_hand(entity, legacy[key])
        actual = {name: target[key][name] for name in expected}
        if actual != expected:
            problems.append(f"{entity} {key}: expected {expected}, target has {actual}")
    return problems[:20]


# -- what the CLI prints ----------------------------------------------------------------------


def _cells(line: str, bar: str) -> list[str]:
    return [c.strip() for c in line.strip().strip(bar).split(bar)]


def run_summary(stdout: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The job status and per-entity counts of the table ``pacsync run`` prints."""
    lines = stdout.splitlines()
    status = next(
        (m.group(1) for line in lines if (m := re.search(r"job \w+: (\w+) in [\d.]+s", line))),
        None,
    )
    assert status is not None, f"no job summary in:\n{stdout}"
    start = next(i for i, line in enumerate(lines) if "┃" in line and "inserted" in line)
    header = _cells(lines[start], "┃")
    entities: dict[str, dict[str, Any]] = {}
    for line in lines[start + 1 :]:
        text = line.strip()
        if text.startswith("└"):
            break
        if not text.startswith("│"):
            continue
        record = dict(zip(header, _cells(line, "│"), strict=True))
        entities[record["entity"]] = {
            name: value if name in ("entity", "mode") else int(value.replace(",", ""))
            for name, value in record.items()
        }
    return status, entities


# -- the pipeline in this process -------------------------------------------------------------


@dataclass
class Deployment:
    """One pipeline file with the environment a test runs ``pacsync`` in."""

    pipeline: Path
    env: dict[str, str]

    @property
    def spec(self) -> PipelineSpec:
        return load_pipeline(self.pipeline, environ=self.env)

    def _store(self) -> bootstrap.Store:
        return bootstrap.store(
            Settings(
                home=Path(self.env["PACSYNC_HOME"]),
                database_url=self.env.get("PACSYNC_DATABASE_URL"),
            )
        )

    def reconcile(self) -> dict[str, EntityReport]:
        spec = self.spec
        store = self._store()
        source, destination = bootstrap.source(spec), bootstrap.destination(spec)
        try:
            reports = reconcile(spec, source, destination, store.dead_letters)
        finally:
            source.close()
            destination.close()
            store.engine.dispose()
        return {r.entity: r for r in reports}

    def open_letters(self) -> dict[str, set[Key]]:
        store = self._store()
        try:
            return {name: store.dead_letters.open_keys(self.spec.name, name) for name in ENTITIES}
        finally:
            store.engine.dispose()

    def letters(self, status: str | None = None) -> list[dict[str, Any]]:
        store = self._store()
        try:
            return store.dead_letters.find(status=status, limit=100_000)
        finally:
            store.engine.dispose()

    def store_workers(self) -> list[WorkerView]:
        store = self._store()
        try:
            return WorkerRegistry(store.engine).all()
        finally:
            store.engine.dispose()

    def jobs(self) -> list[JobView]:
        """Jobs, oldest first."""
        store = self._store()
        try:
            return list(reversed(store.jobs.recent(limit=1000)))
        finally:
            store.engine.dispose()
