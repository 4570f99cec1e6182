"""Fill a simulated legacy property-assessment database with realistic, messy sample data.

    python generate.py --url sqlite:///legacy.db [--scale 1.0] [--seed 42] [--drop]

At scale 1.0 this writes 12,400 properties, 18,600 owners, 62,000 valuations (five tax years
for most parcels) and 14,800 structures; counts scale linearly. The data is generated and
inserted parcel-chunk by parcel-chunk (one transaction each, at most ~10,000 rows per table and
statement), so memory stays bounded at any scale; PostgreSQL through psycopg gets COPY.

The output depends only on the seed and on the reference date (midnight today unless ``now`` is
given): each chunk draws from its own ``random.Random`` seeded with (seed, chunk number).

This file is not part of a package: it loads ``legacy_schema.py`` from its own directory, so it
works both as a script and when loaded by path with ``importlib``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))  # legacy_schema.py beside this file
import legacy_schema as schema

#: Row counts at scale 1.0.
BASE_COUNTS: dict[str, int] = {
    "Property": 12_400,
    "PropertyOwner": 18_600,
    "PropertyValue": 62_000,
    "Structure": 14_800,
}
#: Parcels per chunk: about 10,000 valuation rows, fewer of everything else.
PROPERTIES_PER_CHUNK = 2_000
#: Most parcels have this many tax years of valuations.
TAX_YEARS = 5
ORPHAN_OWNER_RATE = 0.01
DUPLICATE_OWNER_RATE = 0.02
ORPHAN_VALUE_RATE = 0.01


def target_counts(scale: float) -> dict[str, int]:
    """Row counts per table at ``scale`` (all zero when the scale leaves no parcel)."""
    if scale < 0:
        raise ValueError(f"scale must be >= 0, not {scale}")
    counts = {name: round(base * scale) for name, base in BASE_COUNTS.items()}
    if counts["Property"] == 0:
        return dict.fromkeys(counts, 0)
    return counts


def default_now() -> datetime:
    """The reference date of a run: midnight today, local time (the legacy server's clock)."""
    return datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)


def generate(
    url: str,
    scale: float = 1.0,
    seed: int = 42,
    drop: bool = True,
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """Create the legacy tables at ``url`` and fill them; return the row count of each table.

    With ``drop`` the tables are dropped first; without it they are created if missing and
    must be empty. ``now`` is the reference date ``LastModified`` values lie before (three
    years' spread) and tax years count back from.
    """
    counts = target_counts(scale)
    reference = default_now() if now is None else now.replace(microsecond=0)
    engine = sa.create_engine(url)
    try:
        _prepare(engine, drop)
        for chunk in _chunks(counts, seed, reference):
            with engine.begin() as conn:
                for table, rows in zip(schema.TABLES, chunk, strict=True):
                    for start in range(0, len(rows), 10_000):
                        schema.insert_rows(conn, table, rows[start : start + 10_000])
    finally:
        engine.dispose()
    return counts


def _prepare(engine: sa.Engine, drop: bool) -> None:
    if drop:
        schema.metadata.drop_all(engine)
    schema.metadata.create_all(engine)
    if not drop:
        with engine.connect() as conn:
            for table in schema.TABLES:
                if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                    raise RuntimeError(f"table {table.name} is not empty; use --drop")


def _share(total: int, parcels: int, start: int, stop: int) -> tuple[int, int]:
    """First row index and row count of parcels ``start:stop`` in a table of ``total`` rows."""
    first = total * start // parcels
    return first, total * stop // parcels - first


def _portion(rng: random.Random, count: int, rate: float) -> int:
    """About ``rate`` of ``count``, randomly rounded so small chunks keep the rate on average."""
    return min(count, int(count * rate + rng.random()))


def _chunks(
    counts: dict[str, int], seed: int, now: datetime
) -> Iterator[tuple[list[dict[str, Any]], ...]]:
    """Rows of the four tables, parcel chunk by parcel chunk."""
    parcels = counts["Property"]
    for number, start in enumerate(range(0, parcels, PROPERTIES_PER_CHUNK)):
        stop = min(parcels, start + PROPERTIES_PER_CHUNK)
        rng = random.Random(f"pacsync-property-assessment:{seed}:{number}")
        faker = schema.LegacyFaker(rng, now)
        properties, facts = [], []
        for index in range(start, stop):
            row, fact = faker.new_property(schema.PROPERTY_ID_BASE + index + 1)
            properties.append(row)
            facts.append(fact)
        owner_first, owner_count = _share(counts["PropertyOwner"], parcels, start, stop)
        value_first, value_count = _share(counts["PropertyValue"], parcels, start, stop)
        structure_first, structure_count = _share(counts["Structure"], parcels, start, stop)
        owners = _owners(faker, facts, owner_count)
        values = _values(faker, facts, value_count)
        structures = _structures(faker, facts, structure_count)
        _number(owners, "OwnerID", owner_first)
        _number(values, "ValueID", value_first)
        _number(structures, "StructureID", structure_first)
        yield properties, owners, values, structures


def _number(rows: list[dict[str, Any]], key: str, first: int) -> None:
    for offset, row in enumerate(rows, start=first + 1):
        row[key] = offset


def _spread(rng: random.Random, slots: int, extra: int) -> list[int]:
    """How many of ``extra`` items land on each of ``slots`` slots, at random."""
    result = [0] * slots
    for _ in range(extra):
        result[rng.randrange(slots)] += 1
    return result


def _interleave(
    rng: random.Random, rows: list[dict[str, Any]], extra: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``rows`` with ``extra`` rows slipped in at random places (keyed in later, by others)."""
    if not extra:
        return rows
    total = len(rows) + len(extra)
    positions = set(rng.sample(range(total), len(extra)))
    regular, special = iter(rows), iter(extra)
    return [next(special) if i in positions else next(regular) for i in range(total)]


def _owners(faker: Any, facts: Sequence[Any], quota: int) -> list[dict[str, Any]]:
    rng = faker.rng
    orphans = _portion(rng, quota, ORPHAN_OWNER_RATE)
    duplicates = _portion(rng, quota - orphans, DUPLICATE_OWNER_RATE)
    regular = quota - orphans - duplicates
    owned = min(regular, len(facts))
    per_parcel = [1 + n for n in _spread(rng, owned, regular - owned)] if owned else []
    rows: list[dict[str, Any]] = []
    for fact, count in zip(facts, per_parcel, strict=False):
        rows.extend(faker.owners(fact, count))
    specials = [faker.orphan_owner() for _ in range(orphans)]
    if rows:
        specials += [faker.duplicate_owner(rng.choice(rows)) for _ in range(duplicates)]
    else:
        specials += [faker.orphan_owner() for _ in range(duplicates)]
    rng.shuffle(specials)
    return _interleave(rng, rows, specials)


def _values(faker: Any, facts: Sequence[Any], quota: int) -> list[dict[str, Any]]:
    rng = faker.rng
    orphans = _portion(rng, quota, ORPHAN_VALUE_RATE)
    regular = quota - orphans
    years = [TAX_YEARS] * len(facts)
    floor = 1 if regular >= len(facts) else 0
    missing = TAX_YEARS * len(facts) - regular
    while missing > 0:  # newer parcels: fewer tax years on the roll
        i = rng.randrange(len(years))
        cut = min(missing, years[i] - floor, rng.randint(1, TAX_YEARS - 1))
        if cut > 0:
            years[i] -= cut
            missing -= cut
    while missing < 0:  # rounding left a few over: older history kept for some parcels
        years[rng.randrange(len(years))] += 1
        missing += 1
    current = faker.now.year
    rows: list[dict[str, Any]] = []
    for fact, count in zip(facts, years, strict=True):
        rows.extend(faker.values(fact, range(current - count + 1, current + 1)))
    rows += [faker.orphan_value() for _ in range(orphans)]
    rows.sort(key=lambda row: row["TaxYear"])  # one assessment roll after the other
    return rows


def _structures(faker: Any, facts: Sequence[Any], quota: int) -> list[dict[str, Any]]:
    rng = faker.rng
    improved = [f for f in facts if f.property_class.improved] or list(facts)
    mains = min(quota, len(improved))
    per_parcel = [1 + n for n in _spread(rng, mains, quota - mains)] if mains else []
    counts = dict(zip((f.property_id for f in improved), per_parcel, strict=False))
    rows: list[dict[str, Any]] = []
    for fact in facts:
        rows.extend(faker.structures(fact, counts.get(fact.property_id, 0)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the legacy database")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 12,400 parcels")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drop", action="store_true", help="drop the tables first")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = generate(args.url, scale=args.scale, seed=args.seed, drop=args.drop)
    elapsed = time.perf_counter() - started
    summary = " ".join(f"{name}={count:,}" for name, count in counts.items())
    print(f"{summary} ({sum(counts.values()):,} rows in {elapsed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
