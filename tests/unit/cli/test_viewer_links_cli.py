"""``pacsync viewer-links`` through typer's runner, on a store in tmp_path."""

from __future__ import annotations

import datetime as dt

import pytest

from pacsync import bootstrap
from pacsync.domain.clock import utc_now

from .conftest import run

CT, MR = "1.2.840.99.1", "1.2.840.99.2"


@pytest.fixture(autouse=True)
def links(store: bootstrap.Store) -> bootstrap.Store:
    """Two links of the CT study and one of the MR, an hour to go."""
    later = utc_now() + dt.timedelta(hours=1)
    store.viewer_links.record("ct0000000000001", CT, "key:k1", later)
    store.viewer_links.record("ct0000000000002", CT, "key:k2", later)
    store.viewer_links.record("mr0000000000001", MR, "key:k1", later)
    return store


def test_list_shows_active_links_by_study_and_all_with_the_flag(store: bootstrap.Store) -> None:
    store.viewer_links.revoke("ct0000000000002", "key:admin")
    code, out = run("viewer-links", "list")
    assert code == 0, out
    assert "ct0000000000001" in out
    assert "mr0000000000001" in out
    assert "ct0000000000002" not in out
    code, out = run("viewer-links", "list", "--study", CT, "--all")
    assert code == 0, out
    assert "ct0000000000002" in out
    assert "key:admin" in out
    assert "mr0000000000001" not in out


def test_revoke_one_link_is_audited(store: bootstrap.Store) -> None:
    code, out = run("viewer-links", "revoke", "ct0000000000001")
    assert code == 0, out
    assert f"of study {CT} revoked" in out
    assert store.viewer_links.status("ct0000000000001") == "revoked"
    assert store.viewer_links.status("ct0000000000002") == "active"
    (entry,) = store.audit.recent(action="viewer_link.revoke")
    assert (entry["target"], entry["outcome"], entry["actor"][:3]) == (
        "ct0000000000001", "ok", "os:"
    )  # fmt: skip
    code, out = run("viewer-links", "revoke", "ct0000000000001")
    assert code != 0
    assert "PACS-107" in out
    code, out = run("viewer-links", "revoke", "no-such-link")
    assert code != 0
    assert "PACS-104" in out
    outcomes = [e["outcome"] for e in store.audit.recent(action="viewer_link.revoke")]
    assert outcomes == ["PACS-104", "PACS-107", "ok"]


def test_revoke_a_study_revokes_its_active_links(store: bootstrap.Store) -> None:
    code, out = run("viewer-links", "revoke", "--study", CT)
    assert code == 0, out
    assert f"2 viewer link(s) of study {CT} revoked" in out
    assert [x.link_id for x in store.viewer_links.list(active_only=True)] == ["mr0000000000001"]
    (entry,) = store.audit.recent(action="viewer_link.revoke")
    assert (entry["target"], entry["detail"]["revoked"]) == (CT, 2)


def test_revoke_needs_a_link_or_a_study_not_both(store: bootstrap.Store) -> None:
    for args in ((), ("ct0000000000001", "--study", CT)):
        code, out = run("viewer-links", "revoke", *args)
        assert code != 0
        assert "name one viewer link or a study" in out
    assert store.viewer_links.list(active_only=True) != []
    assert store.audit.recent(action="viewer_link.revoke") == []
