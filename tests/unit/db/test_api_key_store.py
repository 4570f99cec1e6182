"""The API key store on SQLite: tokens shown once, verification, revocation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, update

from pacsync.db.api_keys import ApiKeyStore
from pacsync.db.tables import api_keys
from pacsync.domain.access import Principal, Role
from pacsync.errors import InvalidRequest


def test_a_created_key_verifies_and_only_its_hash_is_stored(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    view, token = store.create("ci", Role.OPERATOR, rate_limit_per_min=120)
    assert (view.name, view.role, view.rate_limit_per_min, view.active) == (
        "ci",
        Role.OPERATOR,
        120,
        True,
    )
    with engine.connect() as conn:
        stored = conn.execute(select(api_keys)).one()
    assert token not in [str(v) for v in stored]
    verified = store.verify(token)
    assert verified is not None
    assert verified.id == view.id
    assert verified.principal() == Principal(
        subject=f"key:{view.id}", role=Role.OPERATOR, key_id=view.id, rate_limit_per_min=120
    )


def test_wrong_malformed_and_unknown_tokens_do_not_verify(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    view, token = store.create("ci", "viewer")
    other_secret = f"psk_{view.id}_{'A' * 43}"
    unknown_id = f"psk_{'0' * 16}_{token.split('_', 2)[2]}"
    for bad in (other_secret, unknown_id, token[:-1], "Bearer " + token, "psk_", ""):
        assert store.verify(bad) is None


def test_revoked_keys_never_verify(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    view, token = store.create("old", Role.ADMIN)
    kept, _ = store.create("kept", Role.VIEWER)
    assert store.count_active() == 2
    assert store.revoke(view.id) is True
    assert store.revoke(view.id) is False  # already revoked
    assert store.revoke("nope") is False
    assert store.verify(token) is None
    assert store.count_active() == 1
    listed = {k.id: k for k in store.list()}
    assert listed[view.id].revoked_at is not None
    assert [k.id for k in store.list(include_revoked=False)] == [kept.id]


def test_last_used_is_written_at_most_once_a_minute(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    view, token = store.create("ci", Role.VIEWER)
    first = store.verify(token)
    assert first is not None
    assert first.last_used_at is not None
    second = store.verify(token)
    assert second is not None
    assert second.last_used_at == first.last_used_at
    earlier = first.last_used_at - dt.timedelta(minutes=2)
    with engine.begin() as conn:
        conn.execute(update(api_keys).values(last_used_at=earlier))
    third = store.verify(token)
    assert third is not None
    assert third.last_used_at is not None
    assert third.last_used_at > earlier
    stored = store.get(view.id)
    assert stored is not None
    assert stored.last_used_at == third.last_used_at


@pytest.mark.parametrize(
    ("name", "role", "limit"), [("", "viewer", None), ("x", "root", None), ("x", "admin", 0)]
)
def test_bad_keys_are_refused(engine: Engine, name: str, role: str, limit: int | None) -> None:
    with pytest.raises(InvalidRequest):
        ApiKeyStore(engine).create(name, role, rate_limit_per_min=limit)
    assert ApiKeyStore(engine).count_active() == 0
