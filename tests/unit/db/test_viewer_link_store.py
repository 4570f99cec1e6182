"""The viewer link store on SQLite: recording, revoking one link or a study's, listing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from pacsync.db.viewer_links import ViewerLinkStore
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidState, NotFound

CT, MR = "1.2.840.99.1", "1.2.840.99.2"


def _later(minutes: int) -> dt.datetime:
    return utc_now() + dt.timedelta(minutes=minutes)


def test_a_recorded_link_is_active_until_revoked_and_others_unknown(engine: Engine) -> None:
    links = ViewerLinkStore(engine)
    links.record("a1", CT, "key:k1", _later(60))
    assert links.status("a1") == "active"
    assert links.status("never-issued") == "unknown"
    revoked = links.revoke("a1", "key:admin")
    assert (revoked.link_id, revoked.study_uid, revoked.revoked_by) == ("a1", CT, "key:admin")
    assert revoked.revoked_at is not None
    assert not revoked.active()
    assert links.status("a1") == "revoked"
    stored = links.get("a1")
    assert stored is not None
    assert stored.revoked_by == "key:admin"


def test_revoking_an_unknown_or_revoked_link_is_refused(engine: Engine) -> None:
    links = ViewerLinkStore(engine)
    with pytest.raises(NotFound) as unknown:
        links.revoke("missing", "key:admin")
    assert unknown.value.code == "PACS-104"
    assert unknown.value.hint
    links.record("a1", CT, "key:k1", _later(60))
    links.revoke("a1", "key:first")
    with pytest.raises(InvalidState) as again:
        links.revoke("a1", "key:first")  # the same actor too
    assert again.value.code == "PACS-107"
    assert "key:first" in str(again.value)
    assert links.get("a1").revoked_by == "key:first"  # type: ignore[union-attr]


def test_revoking_a_study_revokes_its_active_links_only(engine: Engine) -> None:
    links = ViewerLinkStore(engine)
    links.record("ct1", CT, "key:k1", _later(60))
    links.record("ct2", CT, "key:k2", _later(60))
    links.record("ct-old", CT, "key:k1", _later(-1))  # expired
    links.record("ct-gone", CT, "key:k1", _later(60))
    links.revoke("ct-gone", "key:earlier")
    links.record("mr1", MR, "key:k1", _later(60))
    assert links.revoke_study(CT, "os:alice") == 2
    names = ("ct1", "ct2", "ct-old", "ct-gone", "mr1")
    assert {n for n in names if links.status(n) == "revoked"} == {"ct1", "ct2", "ct-gone"}
    assert links.get("ct-gone").revoked_by == "key:earlier"  # type: ignore[union-attr]
    assert links.revoke_study(CT, "os:alice") == 0


def test_links_are_listed_newest_first_by_study_and_activity(engine: Engine) -> None:
    links = ViewerLinkStore(engine)
    start = utc_now()
    for minute, (link_id, study) in enumerate([("l1", CT), ("l2", MR), ("l3", CT), ("l4", CT)]):
        links.record(link_id, study, "key:k", _later(60), start + dt.timedelta(minutes=minute))
    links.record("l0", CT, "key:k", _later(-5), start - dt.timedelta(hours=2))
    links.revoke("l3", "key:admin")
    assert [x.link_id for x in links.list()] == ["l4", "l3", "l2", "l1", "l0"]
    assert [x.link_id for x in links.list(study_uid=CT)] == ["l4", "l3", "l1", "l0"]
    assert [x.link_id for x in links.list(study_uid=CT, active_only=True)] == ["l4", "l1"]
    assert [x.link_id for x in links.list(active_only=True, limit=2)] == ["l4", "l2"]
