"""The pacsync store on PostgreSQL: migrations, jobs, dead letters and the audit trail."""

from __future__ import annotations

import pytest

from pacsync.db.audit import AuditLog
from pacsync.db.dead_letters import DeadLetterStore
from pacsync.db.jobs import JobStore
from pacsync.db.store import HEAD, current_revision, open_store
from pacsync.domain.records import Rejected, RowError
from pacsync.errors import DataValidationError

pytestmark = pytest.mark.integration


def test_store_on_postgresql_keeps_jobs_dead_letters_and_audit(pg_url: str) -> None:
    engine = open_store(pg_url)
    try:
        assert current_revision(engine) == HEAD
        jobs = JobStore(engine)
        job_id = jobs.create(kind="sync", pipeline="county", mode="full", entities=["owners"])
        jobs.start(job_id)
        jobs.progress(job_id, {"entities": {"owners": {"read": 5}}})
        error = DataValidationError("2 rows parked")
        jobs.finish(
            job_id,
            "failed",
            {"entities": {"owners": {"inserted": 3, "updated": 1}}},
            error,
            "owners",
        )
        job = jobs.get(job_id[:8])
        assert job is not None
        assert (job.status, job.error_code, job.progress["entities"]["owners"]["inserted"]) == (
            "failed",
            "PACS-004",
            3,
        )
        assert [e["code"] for e in jobs.errors(job_id)] == ["PACS-004"]

        letters = DeadLetterStore(engine)
        bad = Rejected(
            (7,),
            "fp1",
            {"OwnerID": 7, "Name": ""},
            RowError("name", "required", "a value is required"),
        )
        assert letters.park(job_id, "county", "owners", [bad]) == 1
        assert letters.park(job_id, "county", "owners", [bad]) == 0  # same version: parked once
        newer = Rejected((7,), "fp2", {"OwnerID": 7, "Name": " "}, bad.error)
        assert letters.park(job_id, "county", "owners", [newer]) == 1
        found = letters.find(pipeline="county", status=None)
        assert [(d["fingerprint"], d["status"]) for d in found] == [
            ("fp1", "superseded"),
            ("fp2", "open"),
        ]
        assert letters.open_keys("county", "owners") == {(7,)}
        assert letters.resolve("county", "owners", [(7,)], "synced") == 1
        assert letters.open_keys("county", "owners") == set()

        audit = AuditLog(engine)
        audit.record(actor="os:clerk", action="pipeline.run", target="county", outcome="failed")
        assert [(a["actor"], a["outcome"]) for a in audit.recent()] == [("os:clerk", "failed")]
    finally:
        engine.dispose()
