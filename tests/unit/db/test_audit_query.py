"""The audit trail answers who did what, filtered and paged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, update

from pacsync.db.audit import AuditLog
from pacsync.db.tables import audit_log


def test_entries_filter_by_actor_action_family_target_outcome_and_time(engine: Engine) -> None:
    log = AuditLog(engine)
    log.record(actor="key:a", action="jobs.cancel", target="j1", outcome="ok")
    log.record(actor="key:a", action="jobs.retry", target="j2", outcome="PACS-104")
    log.record(actor="os:ann", action="keys.create", target="k1", outcome="ok", source_ip="::1")
    log.record(actor="key:b", action="jobsx.other", target="j1", outcome="ok")
    with engine.begin() as conn:  # the first entry happened a day earlier
        conn.execute(
            update(audit_log).where(audit_log.c.id == 1).values(at=dt.datetime(2026, 1, 1, 12))
        )

    def actions(**filters: object) -> list[str]:
        items, total = log.query(**filters)  # type: ignore[arg-type]
        assert total == len(items)
        return [i["action"] for i in items]

    assert actions(actor="key:a") == ["jobs.retry", "jobs.cancel"]
    assert actions(action="jobs.*") == ["jobs.retry", "jobs.cancel"]
    assert actions(action="keys.create") == ["keys.create"]
    assert actions(target="j1", outcome="ok") == ["jobsx.other", "jobs.cancel"]
    assert actions(since=dt.datetime(2026, 1, 2)) == ["jobsx.other", "keys.create", "jobs.retry"]
    assert actions(until=dt.datetime(2026, 1, 2)) == ["jobs.cancel"]
    items, total = log.query(limit=2, offset=1)
    assert total == 4
    assert [i["action"] for i in items] == ["keys.create", "jobs.retry"]
    assert items[0]["source_ip"] == "::1"


def test_a_family_pattern_is_not_a_sql_wildcard(engine: Engine) -> None:
    log = AuditLog(engine)
    log.record(actor="a", action="a_b.x", target=None, outcome="ok")
    log.record(actor="a", action="acb.x", target=None, outcome="ok")
    items, total = log.query(action="a_b.*")
    assert (total, [i["action"] for i in items]) == (1, ["a_b.x"])
