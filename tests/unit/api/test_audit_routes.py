"""``/audit``: the trail newest first, filtered by actor, action (or family), target,
outcome and time, in pages; admin only."""

from __future__ import annotations

import datetime as dt

from pacsync.domain.access import Role

from .conftest import Api, problem


def _trail(api: Api) -> None:
    record = api.store.audit.record
    record(actor="os:ann", action="job.cancel", target="j1", outcome="ok", source_ip="10.0.0.7")
    record(actor="os:ann", action="job.retry", target="j2", outcome="PACS-104")
    record(actor="key:abc", action="pipeline.put", target="county", outcome="created")
    record(actor="key:abc", action="job.cancel", target="j3", outcome="ok", detail={"n": 1})


def test_the_trail_is_newest_first_in_pages(api: Api) -> None:
    _trail(api)
    page = api.get("/audit?limit=2&offset=1").json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [e["action"] for e in page["items"]] == ["pipeline.put", "job.retry"]
    everything = api.get("/audit").json()["items"]
    assert everything[0]["detail"] == {"n": 1}
    assert everything[-1]["source_ip"] == "10.0.0.7"


def test_filters_narrow_the_trail(api: Api) -> None:
    _trail(api)

    def targets(query: str) -> list[str]:
        return [e["target"] for e in api.get(f"/audit?{query}").json()["items"]]

    assert targets("actor=os:ann") == ["j2", "j1"]
    assert targets("action=job.*") == ["j3", "j2", "j1"]
    assert targets("action=job.cancel&actor=key:abc") == ["j3"]
    assert targets("target=county") == ["county"]
    assert targets("outcome=PACS-104") == ["j2"]
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    assert targets(f"since={future.replace('+', '%2B')}") == []
    assert len(targets(f"since={past.replace('+', '%2B')}&actor=os:ann")) == 2
    assert targets(f"until={past.replace('+', '%2B')}") == []
    problem(api.get("/audit?since=yesterday"), 422, "PACS-105")


def test_the_trail_is_for_admins(api: Api) -> None:
    problem(api.get("/audit", as_=Role.OPERATOR), 403, "PACS-002")
    problem(api.get("/audit", as_=None), 401, "PACS-002")
