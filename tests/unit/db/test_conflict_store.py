"""Conflicts: recorded, listed by status, decided once by a strategy."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine

from pacsync.connectors.sql.engine import make_engine
from pacsync.db.conflicts import ConflictStore, Strategy
from pacsync.errors import InvalidRequest, InvalidState, NotFound

FIELDS: list[dict[str, Any]] = [
    {"field": "phone", "local": "555-0101", "remote": "555-0199", "base": "555-0100"},
    {"field": "email", "local": "a@x.org", "remote": "a@x.org", "base": "old@x.org"},
    {"field": "city", "local": "Springfield", "remote": "Shelbyville", "base": "Springfield"},
]


def recorded(store: ConflictStore, **changes: Any) -> int:
    return store.record(
        changes.get("pipeline", "ehr"),
        "patients",
        changes.get("key", "17"),
        changes.get("fields", FIELDS),
    )


def test_recorded_conflicts_are_open_and_paged_newest_first(engine: Engine) -> None:
    store = ConflictStore(engine)
    ids = [recorded(store, key=str(n), pipeline="ehr" if n % 2 else "pms") for n in range(5)]
    items, total = store.list(status="open", limit=2)
    assert total == 5
    assert [c.id for c in items] == ids[::-1][:2]
    items, total = store.list(pipeline="pms", limit=10, offset=1)
    assert (total, [c.record_key for c in items]) == (3, ["2", "0"])
    first = store.get(ids[0])
    assert first is not None
    assert (first.status, first.strategy, first.fields[0]["field"]) == ("open", None, "phone")
    assert store.counts() == {"open": 5}


@pytest.mark.parametrize(
    ("strategy", "value", "status", "expected"),
    [
        (
            "use_local",
            None,
            "resolved",
            {"phone": "555-0101", "email": "a@x.org", "city": "Springfield"},
        ),
        (
            Strategy.USE_REMOTE,
            None,
            "resolved",
            {"phone": "555-0199", "email": "a@x.org", "city": "Shelbyville"},
        ),
        (
            "MERGE",
            {"phone": "555-0150"},
            "resolved",
            {"phone": "555-0150", "email": "a@x.org", "city": "Shelbyville"},
        ),
        ("manual", {"phone": "n/a"}, "resolved", {"phone": "n/a"}),
        ("ignore", None, "ignored", None),
    ],
)
def test_each_strategy_settles_the_record(
    engine: Engine, strategy: str, value: Any, status: str, expected: Any
) -> None:
    store = ConflictStore(engine)
    conflict_id = recorded(store)
    decided = store.resolve(conflict_id, strategy, value, reason="checked", actor="key:abc")
    assert (decided.status, decided.resolved_value) == (status, expected)
    assert (decided.reason, decided.resolved_by) == ("checked", "key:abc")
    assert decided.strategy == Strategy.parse(str(strategy)).value
    assert decided.resolved_at is not None
    assert store.list(status="open") == ([], 0)


def test_resolving_twice_is_refused_and_the_first_decision_stands(engine: Engine) -> None:
    store = ConflictStore(engine)
    conflict_id = recorded(store)
    store.resolve(conflict_id, "use_local", actor="alice")
    with pytest.raises(InvalidState, match="already resolved by alice") as caught:
        store.resolve(conflict_id, "use_remote", actor="bob")
    assert caught.value.code == "PACS-107"
    kept = store.get(conflict_id)
    assert kept is not None
    assert (kept.strategy, kept.resolved_by) == ("use_local", "alice")


def test_concurrent_decisions_let_exactly_one_win(engine: Engine) -> None:
    conflict_id = recorded(ConflictStore(engine))
    url = engine.url.render_as_string(hide_password=False)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def decide(actor: str) -> None:
        store = ConflictStore(make_engine(url))
        barrier.wait()
        try:
            store.resolve(conflict_id, "use_local", actor=actor)
            outcomes.append("won")
        except InvalidState:
            outcomes.append("lost")
        finally:
            store.engine.dispose()

    threads = [threading.Thread(target=decide, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]


def test_merge_refuses_fields_both_sides_changed_differently(engine: Engine) -> None:
    store = ConflictStore(engine)
    conflict_id = recorded(store)
    with pytest.raises(InvalidRequest, match="both sides changed phone"):
        store.resolve(conflict_id, "merge")
    assert store.counts() == {"open": 1}


def test_manual_needs_a_value_and_strategies_must_be_known(engine: Engine) -> None:
    store = ConflictStore(engine)
    conflict_id = recorded(store)
    with pytest.raises(InvalidRequest, match="needs a value"):
        store.resolve(conflict_id, "manual")
    with pytest.raises(InvalidRequest, match="last_write_wins") as caught:
        store.resolve(conflict_id, "last_write_wins")
    assert "use_local" in caught.value.hint
    with pytest.raises(NotFound):
        store.resolve(999, "ignore")


@pytest.mark.parametrize("fields", [[], [{"local": 1}], ["phone"]])
def test_a_conflict_needs_named_fields(engine: Engine, fields: list[Any]) -> None:
    with pytest.raises(InvalidRequest):
        recorded(ConflictStore(engine), fields=fields)


def test_unknown_status_filter_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match="pending"):
        ConflictStore(engine).list(status="pending")
