"""``pacsync keys`` and ``pacsync audit`` through typer's runner, on a store in tmp_path."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pacsync import bootstrap
from pacsync.cli.audit import parse_time
from pacsync.domain.access import Role
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest

from .conftest import run

TOKEN = re.compile(r"^psk_[0-9a-f]{16}_\S+$", re.MULTILINE)


def test_create_prints_the_token_once_and_it_verifies(store: bootstrap.Store) -> None:
    code, out = run("keys", "create", "--name", "ci", "--role", "Operator", "--rate-limit", "90")
    assert code == 0, out
    assert "shown once" in out
    (token,) = TOKEN.findall(out)
    key = store.api_keys.verify(token)
    assert key is not None
    assert (key.name, key.role, key.rate_limit_per_min) == ("ci", Role.OPERATOR, 90)
    (entry,) = store.audit.recent(action="key.create")
    assert (entry["target"], entry["outcome"], entry["actor"][:3]) == (key.id, "ok", "os:")
    assert token not in str(entry)


def test_list_shows_keys_but_never_tokens(store: bootstrap.Store) -> None:
    active, token = store.api_keys.create("dashboard", Role.VIEWER)
    revoked, _ = store.api_keys.create("old", Role.ADMIN)
    store.api_keys.revoke(revoked.id)
    code, out = run("keys", "list")
    assert code == 0, out
    assert active.id in out
    assert "dashboard" in out
    assert revoked.id not in out
    assert token not in out
    assert "psk_" not in out
    code, out = run("keys", "list", "--all")
    assert revoked.id in out
    assert "revoked" in out
    assert [e["action"] for e in store.audit.recent()] == ["key.list", "key.list"]


def test_revoke_stops_a_key_and_says_why_it_cannot_twice(store: bootstrap.Store) -> None:
    view, token = store.api_keys.create("ci", Role.OPERATOR)
    code, out = run("keys", "revoke", view.id)
    assert code == 0, out
    assert "revoked" in out
    assert store.api_keys.verify(token) is None
    code, out = run("keys", "revoke", view.id)
    assert code == 2
    assert "PACS-107" in out
    assert "already revoked" in out
    code, out = run("keys", "revoke", "0000000000000000")
    assert (code, "no API key" in out) == (2, True)
    outcomes = [(e["target"], e["outcome"]) for e in store.audit.recent(action="key.revoke")]
    assert outcomes == [
        ("0000000000000000", "PACS-104"),
        (view.id, "PACS-107"),
        (view.id, "ok"),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "x", "--role", "root"],
        ["--name", "x", "--role", "admin", "--rate-limit", "0"],
        ["--role", "admin"],
    ],
)
def test_create_refuses_bad_options(store: bootstrap.Store, args: list[str]) -> None:
    code, _ = run("keys", "create", *args)
    assert code == 2
    assert store.api_keys.count_active() == 0


def test_a_blank_name_is_refused_and_audited(store: bootstrap.Store) -> None:
    code, out = run("keys", "create", "--name", " ", "--role", "viewer")
    assert code == 2
    assert "PACS-105" in out
    (entry,) = store.audit.recent(action="key.create")
    assert entry["outcome"] == "PACS-105"


def test_audit_lists_filters_and_audits_its_own_reading(store: bootstrap.Store) -> None:
    store.audit.record(actor="key:a", action="job.cancel", target="j1", outcome="ok")
    store.audit.record(
        actor="jwt:bob", action="dead_letter.read", target="7", outcome="ok", source_ip="10.0.0.9"
    )
    code, out = run("audit")
    assert code == 0, out
    assert "job.cancel" in out
    assert "10.0.0.9" in out
    assert "2 of 2 entries" in out
    code, out = run("audit", "--action", "job.*", "--since", "1h")
    assert "job.cancel" in out
    assert "dead_letter.read" not in out
    code, out = run("audit", "--action", "audit.read", "--actor", store.audit.recent()[0]["actor"])
    assert "2 of 2 entries" in out  # the two readings before this one
    reads = store.audit.recent(action="audit.read")
    assert len(reads) == 3
    assert reads[1]["detail"] == {"action": "job.*", "since": "1h"}


def test_audit_refuses_a_time_it_cannot_read(store: bootstrap.Store) -> None:
    code, out = run("audit", "--since", "last tuesday")
    assert code == 2
    assert "PACS-105" in out
    assert "--since" in out


def test_times_are_iso_or_ages_and_end_up_naive_utc() -> None:
    assert parse_time("2026-11-23", "--since") == dt.datetime(2026, 11, 23)
    assert parse_time("2026-11-23T09:30+01:00", "--since") == dt.datetime(2026, 11, 23, 8, 30)
    before = utc_now()
    week_ago = parse_time("7d", "--since")
    assert before - dt.timedelta(days=7) <= week_ago <= utc_now() - dt.timedelta(days=7)
    with pytest.raises(InvalidRequest):
        parse_time("7 weeks", "--until")
