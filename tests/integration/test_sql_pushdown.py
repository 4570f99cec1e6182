"""A fresh full load mapped and checked by a PostgreSQL source equals the row path's.

The same messy legacy table is loaded twice into PostgreSQL: once with
``pushdown`` (the default: the source computes what it can compute exactly and
the rest takes the row path) and once with ``pushdown: false`` (every row
through the row path).  Both targets must hold the same rows, value for value,
and both stores the same dead letters.  A second test checks each transform's
SQL against the Python transform on generated text, and a third kills a real
``pacsync run`` mid-load and runs it again.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import NullPool

from pacsync import bootstrap
from pacsync.config import Settings, load_pipeline
from pacsync.connectors.sql import pushdown
from pacsync.connectors.sql.bulk_load import SqlBulkLoad
from pacsync.connectors.sql.copy_relay import relay
from pacsync.connectors.sql.destination import SqlDestination
from pacsync.domain.mapping import Mapper
from pacsync.domain.spec import EntitySpec
from pacsync.errors import PacsyncError
from pacsync.ports.bulk_load import Finish
from pacsync.sync import bulk_full
from pacsync.sync.entity import EntitySync
from pacsync.sync.pipeline import NullProgress

pytestmark = pytest.mark.integration

ROWS = 3000
TEXTS = [
    "Kennewick", "  richland ", "PASCO", "o'neil", "st. john", "mary-jo", "new  york",
    "tab\there", "Zürich", "ÅSA", "\u00a0nbsp", "", "   ", None, "x" * 70, "ǆemal",
    "ﬁeld", "İstanbul", "3rd street", "a\x1fb", "\x0bvt", "Coeur d'Alene", "WALLA WALLA",
    " yakima", "benton city ", "west  richland", "\u2003em space",
]  # fmt: skip
ZIPS = ["99301", "99301-1234", "9930", "abcde", "99 301", "993011234", "٩٩٣٠١", None, "", " 99336 "]
CODES = ["ab12", " cd34  ", "", "   ", None, "é1", "toolongcode"]
STATES = ["WA", "wa", "or", "ID", "CA", "", None, "W"]

CREATE = """
CREATE TABLE legacy (
  id bigint PRIMARY KEY, code char(12), pad char(3), name varchar(80), city text,
  zip varchar(12), zip9 varchar(12), phone varchar(20), note text, rep text, state char(2),
  small smallint, amount numeric(12,2), rate numeric(12,4), whole integer, big bigint,
  ratio double precision, flag boolean, born timestamp, seen timestamp, day date,
  label varchar(10))
"""

PIPELINE = """
version: 1
name: messy
connections:
  legacy: {url: "%(source)s"}
  warehouse: {url: "%(target)s"}
source: {connection: legacy}
destination: {connection: warehouse, delete_mode: soft}
batch_size: 250
entities:
  records:
    source: {table: legacy, key: [id]}
    target: {table: records}
    pushdown: %(pushdown)s
    fields:
      id: {from: id, type: bigint}
      code: {from: code, transforms: [trim, upper], length: 8}
      pad: {from: pad}
      name: {from: name, transforms: [collapse_spaces, title], length: 40}
      city: {from: city, transforms: [trim, title]}
      zip: {from: zip, transforms: [zip5], length: 5}
      zip9: {from: zip9, transforms: [zip]}
      phone: {from: phone, transforms: [digits]}
      note: {from: note, type: text, transforms: [empty_to_null]}
      rep: {from: rep, transforms: [{replace: ["-", "/"]}], default: none}
      state: {from: state, transforms: [upper], default: WA}
      small: {from: small, type: integer, transforms: [{null_if: [0]}]}
      amount: {from: amount, type: decimal, precision: 12, scale: 2}
      rate: {from: rate, type: decimal, precision: 12, scale: 2}
      whole: {from: whole, type: decimal, precision: 14, scale: 2}
      big: {from: big, type: bigint}
      ratio: {from: ratio, type: float}
      flag: {from: flag, type: boolean}
      born: {from: born, type: date}
      seen: {from: seen, type: datetime}
      day: {from: day, type: datetime}
      label: {from: label, transforms: [{null_if: ["", a]}]}
    validate:
      - {field: code, rule: required}
      - {field: state, rule: enum, values: [WA, OR, ID]}
      - {field: small, rule: range, min: 0, max: 100}
      - {field: amount, rule: range, min: 0}
      - {field: label, rule: length, min: 2, max: 6}
      - {field: label, rule: required}
"""


class _Messy(random.Random):
    """Mostly the first (clean) choice, now and then any, as in a legacy table."""

    def choice(self, seq: Any) -> Any:
        return seq[0] if self.random() < 0.95 else super().choice(seq)


def _legacy_rows(count: int, seed: int) -> list[dict[str, Any]]:
    pick = _Messy(seed)
    rows = []
    for i in range(1, count + 1):
        rows.append(
            {
                "id": i * 3,
                "code": pick.choice(CODES),
                "pad": pick.choice(["a", "ab", "abc", None, " b"]),
                "name": pick.choice(TEXTS),
                "city": pick.choice(TEXTS),
                "zip": pick.choice(ZIPS),
                "zip9": pick.choice(ZIPS),
                "phone": pick.choice(["(509) 555-0100", "1-509-555-0100", "555", None, "x"]),
                "note": pick.choice(["", "  ", "\t", "keep", " keep ", None, "\u00a0"]),
                "rep": pick.choice(["a-b-c", "--", None, "plain", "é-e"]),
                "state": pick.choice(STATES),
                "small": pick.choice([0, 5, 100, 101, -1, None]),
                "amount": pick.choice([Decimal("0.00"), Decimal("12.50"), Decimal("-1.00"), None]),
                "rate": pick.choice(
                    [Decimal("1.0050"), Decimal("-1.0050"), Decimal("2.4449"), Decimal("NaN"), None]
                ),
                "whole": pick.choice([7, -3, None]),
                "big": pick.choice([2**40, -5, None]),
                "ratio": pick.choice([0.1, -2.5e-300, float("inf"), None]),
                "flag": pick.choice([True, False, None]),
                "born": pick.choice(["2001-02-03 04:05:06", "0001-01-01 00:00:00", None]),
                "seen": pick.choice(["2024-06-01 12:00:00.123456", None]),
                "day": pick.choice(["1999-12-31", None]),
                "label": pick.choice(["ok", "a", "abcdef", "abcdefg", "  ", "ü", None]),
            }
        )
    return rows


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


def _fill(url: str, rows: list[dict[str, Any]]) -> None:
    with _engine(url).begin() as conn:
        conn.exec_driver_sql(CREATE)
        table = sa.Table("legacy", sa.MetaData(), autoload_with=conn)
        conn.execute(table.insert(), rows)


class CountingBulkLoad(SqlBulkLoad):
    """The bulk load, counting what went each way."""

    copied = 0
    ranges = 0

    def load(self, entity: str, after: Any, size: int, finish: Finish) -> tuple[Any, int]:
        upto, copied = super().load(entity, after, size, finish)
        self.copied += copied
        self.ranges += 1
        return upto, copied


def _load(tmp: Path, source: str, target: str, *, push: bool) -> tuple[Any, Any, CountingBulkLoad]:
    path = tmp / f"messy-{push}.yaml"
    path.write_text(PIPELINE % {"source": source, "target": target, "pushdown": str(push).lower()})
    spec = load_pipeline(path)
    store = bootstrap.store(Settings(home=tmp / f"home-{push}"))
    src, dst = bootstrap.source(spec), bootstrap.destination(spec)
    assert isinstance(dst, SqlDestination)
    bulk = CountingBulkLoad(src, dst)
    sync = EntitySync(
        spec,
        "records",
        source=src,
        destination=dst,
        dead_letters=store.dead_letters,
        progress=NullProgress(),
        bulk=bulk,
    )
    counts = sync.run("full")
    letters = {
        (d["record_key"], d["rule"], d["field"], d["message"])
        for d in store.dead_letters.find(status="open", limit=10_000)
    }
    src.close()
    dst.close()
    return counts, letters, bulk


def _target(url: str) -> list[tuple[Any, ...]]:
    with _engine(url).connect() as conn:
        table = sa.Table("records", sa.MetaData(), autoload_with=conn)
        columns = [c for c in table.columns if c.name != "_pacsync_synced_at"]
        rows = conn.execute(sa.select(*columns).order_by(table.c.id))
        # NaN never equals itself: compared by its text
        return [tuple("NaN" if _nan(v) else v for v in row) for row in rows]


def _nan(value: Any) -> bool:
    return isinstance(value, Decimal | float) and math.isnan(value)


def test_the_source_computes_what_the_row_path_would(
    new_pg_url: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_full, "RANGE_BATCHES", 1)  # key ranges of 250 rows
    source, pushed_into, rowwise_into = new_pg_url(), new_pg_url(), new_pg_url()
    _fill(source, _legacy_rows(ROWS, seed=7))

    pushed, pushed_letters, bulk = _load(tmp_path, source, pushed_into, push=True)
    rowwise, rowwise_letters, unused = _load(tmp_path, source, rowwise_into, push=False)

    assert bulk.refusal("records") is None
    assert unused.refusal("records") == "the entity sets pushdown: false"
    assert unused.ranges == 0
    assert bulk.ranges == ROWS // 250 + 1  # the last range is found empty
    # both ways were taken: most rows in SQL, the messy ones by the row path
    assert ROWS // 3 < bulk.copied < ROWS
    assert pushed.inserted > bulk.copied
    for field in ("read", "inserted", "dead_lettered", "filtered"):
        assert getattr(pushed, field) == getattr(rowwise, field), field
    assert pushed.rules_failed == rowwise.rules_failed
    assert set(pushed.rules_failed) >= {"required", "enum", "range", "length"}
    assert pushed_letters == rowwise_letters
    expected = _target(rowwise_into)
    assert len(expected) == pushed.inserted
    assert _target(pushed_into) == expected


# -- each transform against Python, on generated text ---------------------------------------

TRANSFORMS: list[list[Any]] = [
    ["trim"], ["upper"], ["lower"], ["title"], ["trim", "title"], ["collapse_spaces"],
    ["collapse_spaces", "title"], ["zip5"], ["zip"], ["digits"], ["empty_to_null"],
    [{"replace": ["ab", "-"]}], ["trim", "upper", "zip5"], [{"null_if": ["", "x", "AB"]}],
    ["upper", {"null_if": ["AB", "MARY JO"]}],
]  # fmt: skip
ALWAYS = ["x", "mary jo", " ab ", "99301-1234"]  # printable words: each chain takes some
TRICKY = " \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2003'-.09AZaz\u00e9\u0130\u01c6\ufb01\u0663ab"


@pytest.fixture(scope="module")
def scratch(postgres: Any) -> Iterator[sa.Engine]:
    url = postgres.create()
    engine = _engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (id integer PRIMARY KEY, s text, c char(6))")
    yield engine
    engine.dispose()
    postgres.drop(url)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet=TRICKY, max_size=12), st.text(max_size=8)),
        min_size=1,
        max_size=40,
    )
)
def test_each_transform_is_exact_where_it_claims_to_be(
    scratch: sa.Engine, values: list[str | None]
) -> None:
    with scratch.begin() as conn:
        conn.exec_driver_sql("DELETE FROM probe")
        texts = [*values, *ALWAYS]  # every example checks some rows with each chain
        rows = [
            {"id": i, "s": v, "c": None if v is None else v[:6]}
            for i, v in enumerate(texts)
            if v is None or "\x00" not in v
        ]
        table = sa.Table("probe", sa.MetaData(), autoload_with=conn)
        conn.execute(table.insert(), rows)
        quote = conn.dialect.identifier_preparer.quote
        for column in ("s", "c"):
            for chain in TRANSFORMS:
                entity = EntitySpec.model_validate(
                    {
                        "source": {"table": "probe", "key": ["id"]},
                        "target": {"table": "t"},
                        "fields": {"id": {"from": "id", "type": "integer"},
                                   "v": {"from": column, "transforms": chain}},
                    }
                )  # fmt: skip
                plan = pushdown.plan(entity, list(table.columns), quote)
                exact = " AND ".join(plan.exact) or "TRUE"
                found = conn.exec_driver_sql(
                    f"SELECT id, s, c, {plan.values[1]}, ({exact}) IS TRUE FROM probe ORDER BY id"
                ).all()
                mapper = Mapper(entity, ["id", "s", "c"])
                checked = [row for row in found if row[4]]
                assert checked, (column, chain)  # the comparison below ran
                for row in checked:
                    assert mapper.map(tuple(row[:3]))[1] == row[3], (column, chain, row)


# -- crash and resume -------------------------------------------------------------------------


def test_a_killed_bulk_load_resumes_and_ends_equal_to_the_row_path(
    new_pg_url: Callable[[], str], tmp_path: Path, pacsync: Any
) -> None:
    source, into, reference = new_pg_url(), new_pg_url(), new_pg_url()
    rows = 60_000
    _fill(source, _legacy_rows(rows, seed=11))
    path = tmp_path / "crash.yaml"
    path.write_text(
        (PIPELINE % {"source": source, "target": into, "pushdown": "true"}).replace(
            "batch_size: 250", "batch_size: 100"
        )
    )
    process = pacsync.start("run", path, "--quiet", "--full")
    engine = _engine(into)
    deadline = time.monotonic() + 60
    loaded = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with engine.connect() as conn:
                loaded = conn.exec_driver_sql("SELECT count(*) FROM records").scalar_one()
        except sa.exc.ProgrammingError:
            loaded = 0
        if loaded > 2_000:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert 2_000 < loaded < rows, "the run should be stopped mid-load"

    done = pacsync("run", str(path), "--quiet", "--full")
    assert done.returncode == 0, done.stdout + done.stderr
    _load(tmp_path, source, reference, push=False)
    assert _target(into) == _target(reference)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1 / 0",  # refused before the first row
        "SELECT 10 / (g - 500) FROM generate_series(1, 1000) AS g",  # fails mid-stream
    ],
)
def test_a_failing_source_copy_is_a_coded_error_and_leaves_no_connection_behind(
    new_pg_url: Callable[[], str], query: str
) -> None:
    source = sa.create_engine(new_pg_url())
    target = psycopg.connect(new_pg_url().replace("postgresql+psycopg://", "postgresql://"))
    try:
        target.execute("CREATE TABLE t (n integer)")
        with (
            pytest.raises(PacsyncError, match="division by zero") as raised,
            target.cursor() as cur,
            cur.copy("COPY t FROM STDIN (FORMAT BINARY)") as into,
        ):
            relay(source, [f"COPY ({query}) TO STDOUT (FORMAT BINARY)"], into, "source 'x'")
        assert raised.value.code == "PACS-301"
        assert source.pool.checkedout() == 0  # the half-read connection was thrown away
    finally:
        target.close()
        source.dispose()
