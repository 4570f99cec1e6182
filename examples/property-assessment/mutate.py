"""Simulate a day of edits in the legacy property-assessment database.

    python mutate.py --url sqlite:///legacy.db [--inserts N] [--updates N] [--deletes N] [--seed 7]

Each count applies to every table; by default about 0.2% of each table's rows are inserted,
1% updated and 0.1% deleted, in this order: deletes, updates, inserts.

* Deletes: a few parcels are retired together with their owners, valuations and structures
  (those cascaded rows come on top of the table's own count), then owners, valuations and
  structures are deleted on their own. The row with the highest id of a table is never deleted,
  so new ids (highest + 1) are never reused.
* Updates: parcels get re-keyed addresses, cities, ZIP codes, classes and years built; owners
  get renamed, move, change phone or sell; valuations are revised; structures are remodelled
  or re-inspected.
* Inserts: new parcels with their owners, a valuation and structures; what is left of each
  table's count goes to existing parcels (new buyers, supplemental valuations, new sheds).

Every row touched gets ``LastModified`` = now (whole seconds), like a legacy trigger would.
Which rows are touched depends only on the seed and the database contents.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))  # legacy_schema.py beside this file
import legacy_schema as schema

INSERT_RATE = 0.002
UPDATE_RATE = 0.01
DELETE_RATE = 0.001
BATCH = 10_000
_IN_LIMIT = 500  # ids per IN (...) list
_UNIMPROVED = next(c for c in schema.PROPERTY_CLASSES.values if not c.improved)

Counts = dict[str, dict[str, int]]


def mutate(
    url: str,
    inserts: int | None = None,
    updates: int | None = None,
    deletes: int | None = None,
    seed: int = 7,
    *,
    now: datetime | None = None,
) -> Counts:
    """Apply a day of edits at ``url``; return inserted/updated/deleted counts per table.

    ``inserts``, ``updates`` and ``deletes`` are row counts per table; ``None`` means 0.2%, 1%
    and 0.1% of the table's rows (at least one when the table has rows).
    """
    stamp = (datetime.now() if now is None else now).replace(microsecond=0)
    faker = schema.LegacyFaker(random.Random(f"pacsync-property-assessment-mutate:{seed}"), stamp)
    report: Counts = {t.name: {"inserted": 0, "updated": 0, "deleted": 0} for t in schema.TABLES}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            sizes = {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in schema.TABLES
            }
        _delete_all(
            engine, faker, {n: _amount(deletes, s, DELETE_RATE) for n, s in sizes.items()}, report
        )
        for table in schema.TABLES:
            wanted = _amount(updates, sizes[table.name], UPDATE_RATE)
            report[table.name]["updated"] = _update(engine, faker, table, wanted)
        _insert_all(
            engine, faker, {n: _amount(inserts, s, INSERT_RATE) for n, s in sizes.items()}, report
        )
    finally:
        engine.dispose()
    return report


def _amount(explicit: int | None, size: int, rate: float) -> int:
    if explicit is not None:
        if explicit < 0:
            raise ValueError(f"counts must be >= 0, not {explicit}")
        return explicit
    return max(1, round(size * rate)) if size else 0


def _pk(table: sa.Table) -> sa.Column[Any]:
    return table.c[schema.PRIMARY_KEYS[table.name]]


def _batched(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sample(
    conn: sa.Connection,
    table: sa.Table,
    wanted: int,
    rng: random.Random,
    *,
    exclude: set[int] | frozenset[int] = frozenset(),
    keep_highest: bool = False,
) -> list[dict[str, Any]]:
    """Up to ``wanted`` random rows of ``table``, drawn by probing random ids in its id range."""
    pk = _pk(table)
    low, high = conn.execute(sa.select(sa.func.min(pk), sa.func.max(pk))).one()
    if low is None or wanted <= 0:
        return []
    if keep_highest:
        high -= 1
    chosen: dict[int, dict[str, Any]] = {}
    tried = set(exclude)
    for _ in range(30):
        need = wanted - len(chosen)
        if need <= 0 or high < low:
            break
        candidates = []
        for _ in range(2 * need + 8):
            candidate = rng.randint(low, high)
            if candidate not in tried:
                tried.add(candidate)
                candidates.append(candidate)
        found: dict[int, dict[str, Any]] = {}
        for ids in _batched(candidates, _IN_LIMIT):
            for row in conn.execute(sa.select(table).where(pk.in_(ids))).mappings():
                found[row[pk.name]] = dict(row)
        for candidate in candidates:
            if candidate in found and len(chosen) < wanted:
                chosen[candidate] = found[candidate]
    return list(chosen.values())


# -- deletes ----------------------------------------------------------------------------------


def _delete_ids(conn: sa.Connection, table: sa.Table, column: str, ids: Sequence[int]) -> int:
    deleted = 0
    for batch in _batched(ids, _IN_LIMIT):
        deleted += conn.execute(sa.delete(table).where(table.c[column].in_(batch))).rowcount
    return deleted


def _delete_all(engine: sa.Engine, faker: Any, wanted: dict[str, int], report: Counts) -> None:
    parcels, *children = schema.TABLES
    with engine.begin() as conn:
        retired = _sample(conn, parcels, wanted[parcels.name], faker.rng, keep_highest=True)
        ids = sorted(row["PropertyID"] for row in retired)
        for child in children:
            report[child.name]["deleted"] += _delete_ids(conn, child, "PropertyID", ids)
        report[parcels.name]["deleted"] += _delete_ids(conn, parcels, "PropertyID", ids)
    for child in children:
        remaining = wanted[child.name]
        while remaining > 0:
            with engine.begin() as conn:
                rows = _sample(conn, child, min(remaining, BATCH), faker.rng, keep_highest=True)
                if not rows:
                    break
                pk = _pk(child).name
                done = _delete_ids(conn, child, pk, sorted(row[pk] for row in rows))
            report[child.name]["deleted"] += done
            remaining -= len(rows)


# -- updates ----------------------------------------------------------------------------------


def _update(engine: sa.Engine, faker: Any, table: sa.Table, wanted: int) -> int:
    pk = _pk(table)
    columns = [c for c in table.columns if c is not pk]
    statement = (
        sa.update(table)
        .where(pk == sa.bindparam("key_"))
        .values({c.name: sa.bindparam(f"new_{c.name}") for c in columns})
    )
    change = _CHANGES[table.name]
    done: set[int] = set()
    while len(done) < wanted:
        with engine.begin() as conn:
            rows = _sample(conn, table, min(wanted - len(done), BATCH), faker.rng, exclude=done)
            if not rows:
                break
            params = []
            for row in rows:
                new = change(faker, row)
                new["LastModified"] = faker.now
                params.append(
                    {"key_": row[pk.name]} | {f"new_{c.name}": new[c.name] for c in columns}
                )
                done.add(row[pk.name])
            conn.execute(statement, params)
    return len(done)


def _change_property(faker: Any, row: dict[str, Any]) -> dict[str, Any]:
    rng = faker.rng
    facts = faker.facts_from_row(row)
    kind = rng.choice(("address", "address", "city", "zip", "class", "year", "legal"))
    if kind == "address":
        clean = facts.situs if rng.random() < 0.6 else faker.street_line()
        row["SitusAddress"] = faker.situs_address(clean)
    elif kind == "city":
        row["City"] = facts.city.name if rng.random() < 0.5 else faker.city(facts.city)
    elif kind == "zip":
        row["ZipCode"] = facts.zip5 if rng.random() < 0.5 else faker.zip_code(facts.zip5)
    elif kind == "class":
        klass = schema.PROPERTY_CLASSES.pick(rng)
        row["PropertyClass"] = klass.code
        if klass.improved and not row["YearBuilt"]:
            row["YearBuilt"] = faker.now.year
    elif kind == "year":
        if row["YearBuilt"]:  # a correction after a field visit
            row["YearBuilt"] = min(faker.now.year, row["YearBuilt"] + rng.choice((-5, -1, 1, 2)))
        else:
            row["YearBuilt"] = facts.year_built
    else:
        row["LegalDescription"] = faker.legal_description(facts.property_class)
    return row


def _change_owner(faker: Any, row: dict[str, Any]) -> dict[str, Any]:
    rng = faker.rng
    kind = rng.choice(("name", "name", "mailing", "phone", "sold"))
    if kind == "name":
        name = str(row["OwnerName"] or "")
        if rng.random() < 0.5 and name:
            row["OwnerName"] = faker.misspell(name)
        else:  # a marriage, a company renamed, a trust set up
            row["OwnerName"] = faker.owner_name((row["OwnerType"] or "I").upper())
    elif kind == "mailing":
        facts = faker.facts_from_row({"PropertyID": row["PropertyID"], "City": ""})
        facts.situs = faker.street_line()
        row["MailingAddress"], _ = faker.mailing_address(facts, rng.random() < 0.3)
    elif kind == "phone":
        row["Phone"] = faker.phone()
    else:
        row["EndDate"] = faker.legacy_date(faker.now.date(), blank=0.0)
    return row


def _change_value(faker: Any, row: dict[str, Any]) -> dict[str, Any]:
    rng = faker.rng
    land = float(row["LandValue"] or 0) * rng.uniform(0.92, 1.12)
    improvement = float(row["ImprovementValue"] or 0) * rng.uniform(0.85, 1.15)
    old_market = float(row["MarketValue"] or 0)
    ratio = float(row["AssessedValue"] or 0) / old_market if old_market else 1.0
    market = round(land, -1) + round(improvement, -1)
    row["LandValue"] = schema.money(round(land, -1))
    row["ImprovementValue"] = schema.money(round(improvement, -1))
    row["MarketValue"] = schema.money(market)
    row["AssessedValue"] = schema.money(market * ratio)
    return row


def _change_structure(faker: Any, row: dict[str, Any]) -> dict[str, Any]:
    rng = faker.rng
    kind = rng.choice(("condition", "condition", "remodel", "year"))
    if kind == "condition":
        row["Condition"] = schema.CONDITIONS.pick(rng)
    elif kind == "remodel":
        row["SquareFootage"] = int(row["SquareFootage"] or 0) + rng.randint(80, 600)
        if row["Bedrooms"] is not None and rng.random() < 0.5:
            row["Bedrooms"] += 1
        if row["Bathrooms"] is not None and rng.random() < 0.5:
            row["Bathrooms"] = Decimal(row["Bathrooms"]) + Decimal("0.5")
    else:
        row["YearBuilt"] = row["YearBuilt"] or faker.now.year - rng.randint(1, 60)
    return row


_CHANGES = {
    "Property": _change_property,
    "PropertyOwner": _change_owner,
    "PropertyValue": _change_value,
    "Structure": _change_structure,
}


# -- inserts ----------------------------------------------------------------------------------


def _next_ids(conn: sa.Connection) -> dict[str, int]:
    return {
        t.name: (conn.execute(sa.select(sa.func.max(_pk(t)))).scalar() or 0) + 1
        for t in schema.TABLES
    }


def _insert_all(engine: sa.Engine, faker: Any, wanted: dict[str, int], report: Counts) -> None:
    remaining = dict(wanted)
    while any(remaining.values()):
        with engine.begin() as conn:
            rows = _new_rows(conn, faker, remaining)
            if not any(rows.values()):
                break
            next_ids = _next_ids(conn)
            if next_ids["Property"] <= schema.PROPERTY_ID_BASE:
                next_ids["Property"] = schema.PROPERTY_ID_BASE + 1
            for table in schema.TABLES:
                batch = rows[table.name]
                for offset, row in enumerate(batch):
                    row[_pk(table).name] = next_ids[table.name] + offset
                    row["LastModified"] = faker.now
                if table.name == "Property":  # children of new parcels point at the new ids
                    _renumber_parcels(batch, rows)
                schema.insert_rows(conn, table, batch)
                report[table.name]["inserted"] += len(batch)
                remaining[table.name] -= len(batch)


def _renumber_parcels(parcels: list[dict[str, Any]], rows: dict[str, list[dict[str, Any]]]) -> None:
    """Give placeholder (negative) parcel ids their real ids, in parcels and their children."""
    real = {}
    for row in parcels:
        placeholder = row.pop("_placeholder")
        real[placeholder] = row["PropertyID"]
        index = row["PropertyID"] - schema.PROPERTY_ID_BASE
        suffix = row["ParcelNumber"].strip()[-4:] if "-" in row["ParcelNumber"] else "-000"
        row["ParcelNumber"] = (schema.parcel_number(index) + suffix).ljust(
            schema.PARCEL_NUMBER_WIDTH
        )
    for name in ("PropertyOwner", "PropertyValue", "Structure"):
        for row in rows[name]:
            row["PropertyID"] = real.get(row["PropertyID"], row["PropertyID"])


def _new_rows(conn: sa.Connection, faker: Any, remaining: dict[str, int]) -> dict[str, list[Any]]:
    """Up to ``BATCH`` new rows per table: new parcels first, then children of existing ones."""
    rng = faker.rng
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in schema.TABLES}
    budget = {name: min(count, BATCH) for name, count in remaining.items()}
    for number in range(budget["Property"]):
        placeholder = -(number + 1)
        parcel, facts = faker.new_property(placeholder)
        parcel["_placeholder"] = placeholder
        if facts.property_class.improved and rng.random() < 0.5:  # new construction
            parcel["YearBuilt"] = facts.year_built = faker.now.year
        rows["Property"].append(parcel)
        owners = min(budget["PropertyOwner"], 1 + (rng.random() < 0.3))
        structures = min(
            budget["Structure"], rng.randint(1, 2) if facts.property_class.improved else 0
        )
        values = min(budget["PropertyValue"], 1)
        rows["PropertyOwner"] += faker.owners(facts, owners)
        rows["PropertyValue"] += faker.values(facts, [faker.now.year] * values)
        rows["Structure"] += faker.structures(facts, structures)
        budget["PropertyOwner"] -= owners
        budget["PropertyValue"] -= values
        budget["Structure"] -= structures
    extra = max(budget["PropertyOwner"], budget["PropertyValue"], budget["Structure"])
    existing = _sample(conn, schema.property, extra, rng) if extra > 0 else []
    for i in range(extra if existing else 0):
        facts = faker.facts_from_row(existing[i % len(existing)])
        if i < budget["PropertyOwner"]:  # a sale recorded today
            buyer = faker.owners(facts, 1)[0]
            buyer["StartDate"] = faker.legacy_date(faker.now.date(), blank=0.0)
            rows["PropertyOwner"].append(buyer)
        if i < budget["PropertyValue"]:  # a supplemental valuation
            rows["PropertyValue"] += faker.values(facts, [faker.now.year])
        if i < budget["Structure"]:  # a permit for a shed, a garage, a shop...
            facts.property_class = _UNIMPROVED  # so that only an outbuilding is made
            rows["Structure"] += faker.structures(facts, 1)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the legacy database")
    parser.add_argument("--inserts", type=int, help="rows per table (default 0.2%%)")
    parser.add_argument("--updates", type=int, help="rows per table (default 1%%)")
    parser.add_argument("--deletes", type=int, help="rows per table (default 0.1%%)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = mutate(args.url, args.inserts, args.updates, args.deletes, args.seed)
    elapsed = time.perf_counter() - started
    for name, counts in report.items():
        print(f"{name:<14} " + " ".join(f"{k}={v:,}" for k, v in counts.items()))
    print(f"({elapsed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
