"""Request and response bodies of the API, with examples for the OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pacsync.db.jobs import JobView

PIPELINE_NAME = r"^[a-z0-9][a-z0-9_-]{0,99}$"
JOB_ID = r"^[0-9a-f-]{4,36}$"
JOB_EXAMPLE = "0b6f0e0c-3f4e-4a9e-9a7e-2f1c9b2d5e41"
MAX_OFFSET = 1_000_000_000  # pages past this are refused (a database integer holds it)


def _utc(at: dt.datetime) -> dt.datetime:
    """The store's naive UTC times, marked UTC (RFC 3339 wants the offset)."""
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at


UtcTime = Annotated[dt.datetime, AfterValidator(_utc)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(Model):
    field: str = Field(examples=["body.mode"])
    message: str = Field(examples=["Input should be 'full' or 'incremental'"])
    type: str = Field(examples=["literal_error"])


class Problem(Model):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(examples=["urn:pacsync:problem:PACS-104"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no job with id '0b6f0e0c'"])
    code: str = Field(examples=["PACS-104"], description="the PACS error code")
    hint: str = Field(examples=["List the jobs: `pacsync jobs`."])
    errors: list[FieldError] | None = Field(None, description="the fields a request got wrong")


class ErrorInfo(Model):
    code: str = Field(examples=["PACS-003"])
    message: str = Field(examples=["source 'legacy': table Property does not exist"])
    hint: str | None = Field(None, examples=["Update the pipeline's field mapping."])


# -- health --------------------------------------------------------------------------------


class Health(Model):
    status: Literal["ok"] = "ok"


class Check(Model):
    name: str = Field(examples=["connection property-assessment/legacy"])
    kind: str = Field(examples=["connection"], description="store, job_layer, connection, pipeline")
    status: Literal["up", "down"]
    response_ms: float = Field(examples=[3.2])
    detail: str | None = Field(None, examples=["PACS-001 connection refused"])


class Readiness(Model):
    status: Literal["HEALTHY", "DEGRADED", "UNHEALTHY"]
    checks: list[Check]


# -- pipelines -----------------------------------------------------------------------------


class PipelineSummary(Model):
    name: str = Field(examples=["property-assessment"])
    file: str = Field(examples=[".pacsync/pipelines/property-assessment.yaml"])
    valid: bool
    entities: list[str] = Field(examples=[["properties", "owners"]])
    error: ErrorInfo | None = None


class EntityInfo(Model):
    name: str = Field(examples=["properties"])
    source_table: str = Field(examples=["Property"])
    target_table: str | None = Field(
        examples=["properties"], description="none when each record is sent as an HL7 message"
    )
    key: list[str] = Field(examples=[["PropertyID"]])
    strategy: str = Field(examples=["hash_diff"])
    fields: int = Field(examples=[11], description="how many target fields are mapped")


class ConnectionInfo(Model):
    url: str = Field(
        examples=["postgresql+psycopg://sync:***@db/warehouse"], description="password hidden"
    )
    description: str = ""
    fallback: str | None = None


class PipelineDetail(Model):
    name: str = Field(examples=["property-assessment"])
    file: str
    description: str
    source: str = Field(examples=["legacy"], description="the source connection")
    destination: str = Field(examples=["warehouse"], description="the destination connection")
    connections: dict[str, ConnectionInfo]
    entities: list[EntityInfo]
    schedule: dict[str, Any] | None = Field(
        None, examples=[{"full": "0 2 * * 0", "incremental": "0 2 * * 1-6"}]
    )


class PipelineText(Model):
    """A pipeline file sent as JSON (the same text may be sent as ``application/yaml``)."""

    yaml: str = Field(
        max_length=1024 * 1024,
        examples=["version: 1\nname: county\nconnections: {...}\n"],
    )


class PipelineSaved(Model):
    name: str = Field(examples=["property-assessment"])
    file: str
    created: bool = Field(description="false when an existing file was replaced")
    entities: list[str]


class Validation(Model):
    valid: bool
    name: str | None = Field(None, examples=["property-assessment"])
    entities: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None


# -- jobs ----------------------------------------------------------------------------------


class SyncStart(Model):
    pipeline: str = Field(pattern=PIPELINE_NAME, examples=["property-assessment"])
    sync_type: Literal["full", "incremental"] = "incremental"
    entities: list[str] = Field(
        default_factory=list, max_length=100, description="empty: every entity"
    )


class JobCreate(Model):
    pipeline: str = Field(pattern=PIPELINE_NAME, examples=["property-assessment"])
    mode: Literal["full", "incremental"] = "incremental"
    entities: list[str] = Field(default_factory=list, max_length=100)
    priority: int = Field(0, ge=0, le=1_000_000, description="lower runs first")
    idempotency_key: str = Field(
        "",
        max_length=200,
        examples=["nightly-2026-11-23"],
        description="the same key is always the same job",
    )


class JobAccepted(Model):
    job_id: str = Field(examples=[JOB_EXAMPLE])
    status: str = Field(examples=["queued"])
    created: bool = Field(description="false when the idempotency key named a known job")
    queue: str = Field(examples=["sync-jobs"])


class Job(Model):
    id: str = Field(examples=[JOB_EXAMPLE])
    kind: str = Field(examples=["sync"])
    pipeline: str = Field(examples=["property-assessment"])
    mode: str = Field(examples=["incremental"])
    entities: list[str]
    status: str = Field(examples=["running"])
    trigger: str = Field(examples=["manual"])
    queue: str = Field(examples=["sync-jobs"])
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    duration_s: float | None
    attempts: int
    executor_id: str | None
    records: int = Field(description="records read so far, all entities")
    progress: dict[str, Any] = Field(
        examples=[{"entities": {"properties": {"read": 1200, "total": 12000, "inserted": 1200}}}]
    )
    error: ErrorInfo | None = None

    @classmethod
    def of(cls, job: JobView) -> Job:
        entities = job.progress.get("entities", {}).values()
        error = None
        if job.error_code:
            error = ErrorInfo(
                code=job.error_code, message=job.error_message or "", hint=job.error_hint
            )
        return cls(
            id=job.id,
            kind=job.kind,
            pipeline=job.pipeline,
            mode=job.mode,
            entities=list(job.entities),
            status=job.status,
            trigger=job.trigger,
            queue=job.queue,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_s=job.duration_s,
            attempts=job.attempts,
            executor_id=job.executor_id,
            records=sum(int(e.get("read", 0)) for e in entities),
            progress=job.progress,
            error=error,
        )


class JobErrorInfo(Model):
    at: UtcTime
    entity: str | None
    code: str
    message: str
    hint: str | None
    transient: bool


class JobDetail(Job):
    request: dict[str, Any] | None = Field(None, description="what the job was asked to do")
    errors: list[JobErrorInfo]

    @classmethod
    def with_errors(cls, job: JobView, errors: list[dict[str, Any]]) -> JobDetail:
        return cls(
            **Job.of(job).model_dump(),
            request=job.request,
            errors=[
                JobErrorInfo(
                    at=e["at"],
                    entity=e["entity"],
                    code=e["code"],
                    message=e["message"],
                    hint=e["hint"],
                    transient=bool(e["transient"]),
                )
                for e in errors
            ],
        )


class JobPage(Model):
    items: list[Job]
    total: int
    limit: int
    offset: int


class JobCancelled(Model):
    id: str = Field(examples=[JOB_EXAMPLE])
    status: str = Field(examples=["cancelled"])


class RetryQueued(Model):
    job_id: str = Field(examples=[JOB_EXAMPLE], description="the new job")


class LastRun(Model):
    pipeline: str
    job: Job


class SyncStatus(Model):
    active: list[Job] = Field(description="running and queued jobs, newest first")
    last_runs: list[LastRun] = Field(description="the newest ended job of each pipeline")


# -- dead letters --------------------------------------------------------------------------


class DeadLetter(Model):
    id: int
    kind: str = Field(examples=["record"])
    job_id: str | None
    pipeline: str
    entity: str
    record_key: str = Field(examples=["[1042]"])
    error_code: str = Field(examples=["PACS-004"])
    rule: str = Field(examples=["range"])
    field: str | None = Field(examples=["year_built"])
    message: str
    status: str = Field(examples=["open"])
    attempts: int
    created_at: UtcTime
    updated_at: UtcTime

    @classmethod
    def of(cls, letter: dict[str, Any]) -> Self:
        return cls(**{name: letter[name] for name in cls.model_fields})


class DeadLetterDetail(DeadLetter):
    fingerprint: str
    payload: dict[str, Any] = Field(description="the record (or job request) as it was parked")
    history: list[dict[str, Any]]


class DeadLetterPage(Model):
    items: list[DeadLetter]
    total: int
    limit: int
    offset: int


class DeadLetterDiscarded(Model):
    id: int
    status: Literal["discarded"] = "discarded"


# -- statistics ----------------------------------------------------------------------------


class DailyStatistics(Model):
    day: dt.date
    pipeline: str
    jobs: int
    successes: int
    failures: int
    records: int = Field(description="records inserted, updated or deleted")
    bytes: int
    mean_duration_s: float | None


class Statistics(Model):
    items: list[DailyStatistics]
