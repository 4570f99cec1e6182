"""The property-assessment recipe's sample-data tooling (examples/property-assessment)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "property-assessment"
NOW = datetime(2024, 6, 1)
LATER = datetime(2024, 6, 2, 9, 30, 15)
SCALE = 0.02
TABLE_NAMES = ("Property", "PropertyOwner", "PropertyValue", "Structure")
GOOD_ZIP = re.compile(r"\d{5}(-\d{4})?")


@pytest.fixture(scope="module")
def generator(recipe: Any) -> ModuleType:  # the recipe fixture of tests/conftest.py
    return recipe.generate


@pytest.fixture(scope="module")
def mutator(recipe: Any) -> ModuleType:
    return recipe.mutate


@pytest.fixture(scope="module")
def schema(generator: ModuleType) -> ModuleType:
    return generator.schema


@pytest.fixture(scope="module")
def generated(generator: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('legacy') / 'legacy.db'}"
    generator.generate(url, scale=SCALE, seed=42, now=NOW)
    return url


def _rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            reflected = sa.Table(table, meta, autoload_with=conn)
            query = sa.select(reflected).order_by(*reflected.primary_key.columns)
            return [dict(row) for row in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one()
                for name in TABLE_NAMES
            }
    finally:
        engine.dispose()


def _dump(url: str) -> dict[str, list[dict[str, Any]]]:
    return {name: _rows(url, name) for name in TABLE_NAMES}


def test_schema_has_the_four_legacy_tables(schema: ModuleType) -> None:
    assert [t.name for t in schema.TABLES] == list(TABLE_NAMES)
    assert set(schema.metadata.tables) == set(TABLE_NAMES)
    assert schema.property.c.PropertyID.primary_key
    assert schema.property.c.PropertyID.autoincrement is False
    assert not schema.property_owner.c.PropertyID.foreign_keys
    for table in schema.TABLES:
        assert table.c.LastModified.index


def test_counts_match_the_scale(generator: ModuleType, generated: str) -> None:
    expected = {"Property": 248, "PropertyOwner": 372, "PropertyValue": 1240, "Structure": 296}
    assert generator.target_counts(SCALE) == expected
    assert _counts(generated) == expected
    assert generator.target_counts(100) == {
        "Property": 1_240_000,
        "PropertyOwner": 1_860_000,
        "PropertyValue": 6_200_000,
        "Structure": 1_480_000,
    }


def test_generate_returns_counts_and_spans_several_chunks(
    generator: ModuleType, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'chunks.db'}"
    counts = generator.generate(url, scale=0.25, seed=3, now=NOW)  # 3,100 parcels: 2 chunks
    assert counts == generator.target_counts(0.25)
    assert _counts(url) == counts


def test_same_seed_same_data_other_seed_other_data(
    generator: ModuleType, generated: str, tmp_path: Path
) -> None:
    again = f"sqlite:///{tmp_path / 'again.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    generator.generate(again, scale=SCALE, seed=42, now=NOW)
    generator.generate(other, scale=SCALE, seed=43, now=NOW)
    reference = _dump(generated)
    assert _dump(again) == reference
    assert _dump(other) != reference


def test_without_drop_refuses_to_fill_non_empty_tables(
    generator: ModuleType, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    generator.generate(url, scale=0.001, drop=False, now=NOW)
    with pytest.raises(RuntimeError, match="not empty"):
        generator.generate(url, scale=0.001, drop=False, now=NOW)
    assert generator.generate(url, scale=0.001, drop=True, now=NOW)["Property"] == 12


def test_property_rows_are_messy(generated: str) -> None:
    parcels = _rows(generated, "Property")
    assert all(len(p["ParcelNumber"]) == 20 for p in parcels)
    assert any(p["ParcelNumber"].endswith(" ") for p in parcels)
    assert len({p["ParcelNumber"] for p in parcels}) == len(parcels)
    zips = [p["ZipCode"] for p in parcels]
    assert any(not GOOD_ZIP.fullmatch(z) for z in zips)  # '9933', '99336-', 'N/A', ''
    assert any(re.fullmatch(r"\d{5}-\d{4}", z) for z in zips)
    assert sum(GOOD_ZIP.fullmatch(z) is not None for z in zips) > 0.9 * len(zips)
    cities = {p["City"] for p in parcels}
    assert {"KENNEWICK", "Kennewick"} <= cities
    assert any(c != c.strip() or "  " in c for c in cities)
    assert any(p["YearBuilt"] in (0, None) for p in parcels)
    assert {p["PropertyClass"] for p in parcels} >= {"111", "830"}
    stamps = [p["LastModified"] for p in parcels]
    assert min(stamps) >= datetime(2021, 6, 1)
    assert max(stamps) < NOW
    assert max(stamps) - min(stamps) > (NOW - datetime(2021, 6, 1)) * 0.9


def test_owner_rows_are_messy(generated: str) -> None:
    parcel_ids = {p["PropertyID"] for p in _rows(generated, "Property")}
    owners = _rows(generated, "PropertyOwner")
    orphans = [o for o in owners if o["PropertyID"] not in parcel_ids]
    assert 1 <= len(orphans) <= 0.03 * len(owners)
    assert parcel_ids <= {o["PropertyID"] for o in owners}  # every parcel has an owner
    types = Counter(o["OwnerType"] for o in owners)
    assert types["I"] > types["C"] > 0
    assert any(t.islower() for t in types if t)
    assert "" in types
    starts = [o["StartDate"] for o in owners]
    assert any(re.fullmatch(r"\d\d/\d\d/\d{4}", s) for s in starts)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d", s) for s in starts)
    assert "" in starts
    phones = [o["Phone"] for o in owners]
    assert any(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", p) for p in phones)
    assert any(re.fullmatch(r"\d{10}", p) for p in phones)
    assert "" in phones


def _normalised(name: str) -> str:
    return " ".join(sorted(name.upper().replace(",", " ").split()))


def test_some_owners_are_keyed_in_twice(generated: str) -> None:
    owners = _rows(generated, "PropertyOwner")
    by_parcel: dict[tuple[int, str], set[str]] = {}
    for owner in owners:
        key = (owner["PropertyID"], _normalised(owner["OwnerName"]))
        by_parcel.setdefault(key, set()).add(owner["OwnerName"])
    spelled_differently = [names for names in by_parcel.values() if len(names) > 1]
    assert spelled_differently  # e.g. {'SMITH JOHN A', 'Smith John A'}


def test_valuations_and_structures(generated: str) -> None:
    parcel_ids = {p["PropertyID"] for p in _rows(generated, "Property")}
    values = _rows(generated, "PropertyValue")
    assert any(v["PropertyID"] not in parcel_ids for v in values)
    years_per_parcel = Counter(v["PropertyID"] for v in values if v["PropertyID"] in parcel_ids)
    assert sum(n == 5 for n in years_per_parcel.values()) > 0.9 * len(parcel_ids)
    assert {v["TaxYear"] for v in values} == set(range(2020, 2025))
    assert any(v["AssessedValue"] != v["MarketValue"] for v in values)
    assert all(v["LandValue"] >= 0 and v["MarketValue"] >= 0 for v in values)
    structures = _rows(generated, "Structure")
    conditions = {s["Condition"] for s in structures}
    assert len(conditions & {"G", "GOOD", "Good", "AVG", "Average", "P", "Poor", ""}) >= 5
    assert any(s["Bedrooms"] is None for s in structures)
    assert any(s["Bathrooms"] is not None for s in structures)


def test_mutate_reports_what_it_did(
    generator: ModuleType, mutator: ModuleType, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'mutated.db'}"
    generator.generate(url, scale=SCALE, seed=42, now=NOW)
    before = _counts(url)
    report = mutator.mutate(url, inserts=4, updates=6, deletes=2, seed=7, now=LATER)
    after = _counts(url)
    assert set(report) == set(TABLE_NAMES)
    for name in TABLE_NAMES:
        done = report[name]
        assert done["inserted"] == 4
        assert done["updated"] == 6
        assert after[name] == before[name] + done["inserted"] - done["deleted"]
        touched = [r for r in _rows(url, name) if r["LastModified"] == LATER]
        assert len(touched) == done["inserted"] + done["updated"]
    assert report["Property"]["deleted"] == 2
    for name in TABLE_NAMES[1:]:  # retired parcels take their children along
        assert report[name]["deleted"] >= 2


def test_mutate_defaults_and_determinism(
    generator: ModuleType, mutator: ModuleType, tmp_path: Path
) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    second = f"sqlite:///{tmp_path / 'second.db'}"
    for url in (first, second):
        generator.generate(url, scale=SCALE, seed=42, now=NOW)
    report = mutator.mutate(first, now=LATER)
    assert report == mutator.mutate(second, now=LATER)
    assert _dump(first) == _dump(second)
    # 1% updates, 0.2% inserts, 0.1% deletes (at least one) of 248 parcels / 1,240 valuations
    assert report["Property"]["updated"] == 2
    assert report["PropertyValue"] == {
        "inserted": 2,
        "updated": 12,
        "deleted": report["PropertyValue"]["deleted"],
    }
    assert report["PropertyValue"]["deleted"] >= 1
    parcel_ids = [p["PropertyID"] for p in _rows(first, "Property")]
    assert max(parcel_ids) == 100_000 + 248 + 1  # new ids continue after the highest


def test_scripts_run_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    generated = subprocess.run(
        [sys.executable, str(RECIPE / "generate.py"), "--url", url, "--scale", "0.01", "--drop"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Property=124 PropertyOwner=186 PropertyValue=620 Structure=148" in generated.stdout
    mutated = subprocess.run(
        [sys.executable, str(RECIPE / "mutate.py"), "--url", url, "--updates", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "updated=3" in mutated.stdout
