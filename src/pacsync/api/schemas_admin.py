"""Bodies of the administration routes: connections, conflicts, webhooks, keys, audit.

Secrets are write-only: a password or signing secret is accepted, never shown,
except a generated secret or token, shown once in the answer that made it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from pacsync.api.schemas import PIPELINE_NAME, Model, UtcTime
from pacsync.db.api_keys import ApiKeyView
from pacsync.db.conflicts import ConflictView
from pacsync.db.webhook_sources import SourceView
from pacsync.db.webhooks import DeliveryView, WebhookView
from pacsync.domain.access import Role
from pacsync.jobs.webhooks import EVENTS, valid_subscription

CONNECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"
CONNECTION_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$"  # also <pipeline>.<connection>
SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]{0,99}$"
WEBHOOK_ID = r"^[0-9a-f]{16}$"
KEY_ID = r"^[0-9a-f]{16}$"
PipelineName = Annotated[str, Field(pattern=PIPELINE_NAME)]
# what a webhook may be limited to: a pipeline, or a FHIR connection's syncs (fhir:NAME)
EventScope = Annotated[
    str, Field(pattern=r"^(fhir:[A-Za-z0-9][A-Za-z0-9_-]{0,99}|[a-z0-9][a-z0-9_-]{0,99})$")
]
EntityName = Annotated[str, Field(min_length=1, max_length=100)]

# -- connections ---------------------------------------------------------------------------


class ConnectionPut(Model):
    kind: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$", examples=["sql"])
    url: str = Field(
        min_length=3,
        max_length=2000,
        examples=["postgresql+psycopg://sync@db.example.org/warehouse"],
        description="a password in the URL is taken out and stored sealed",
    )
    options: dict[str, Any] = Field(default_factory=dict, examples=[{"pool_size": 5}])
    password: str | None = Field(
        None,
        max_length=1000,
        description='write-only; wins over one in the URL; "" clears the stored one',
    )


class Connection(Model):
    name: str = Field(examples=["warehouse"], description="<pipeline>.<name> for a pipeline's")
    kind: str = Field(examples=["sql"])
    url: str = Field(examples=["postgresql+psycopg://sync@db.example.org/warehouse"])
    options: dict[str, Any]
    password_set: bool
    origin: Literal["store", "pipeline"] = Field(
        description="store: managed here; pipeline: declared in a pipeline file (read-only)"
    )
    pipeline: str | None = Field(None, examples=["property-assessment"])
    created_at: UtcTime | None = None
    updated_at: UtcTime | None = None


class ConnectionDeleted(Model):
    name: str
    deleted: Literal[True] = True


class ConnectionTest(Model):
    name: str
    status: Literal["ok", "failed"]
    code: str | None = Field(None, examples=["PACS-001"])
    message: str = Field(examples=["connection refused"])
    hint: str | None = None
    response_ms: float = Field(examples=[12.5])


# -- conflicts -----------------------------------------------------------------------------

ApiStrategy = Literal["USE_LOCAL", "USE_REMOTE", "MERGE", "MANUAL", "IGNORE"]


class ConflictField(Model):
    field: str = Field(examples=["phone"])
    local: Any = Field(None, examples=["555-0100"])
    remote: Any = Field(None, examples=["555-0199"])
    base: Any = Field(
        None, examples=["555-0000"], description="the value both sides last agreed on"
    )


class ConflictSummary(Model):
    id: int
    pipeline: str = Field(examples=["pms-hl7"])
    entity: str = Field(examples=["patients"])
    record_key: str = Field(examples=["[1042]"])
    fields: list[str] = Field(examples=[["phone"]], description="the fields both sides changed")
    status: Literal["open", "resolved", "ignored"]
    strategy: ApiStrategy | None
    resolved_by: str | None
    detected_at: UtcTime
    resolved_at: UtcTime | None

    @classmethod
    def of(cls, c: ConflictView) -> Self:
        return cls(
            id=c.id,
            pipeline=c.pipeline,
            entity=c.entity,
            record_key=c.record_key,
            fields=[f["field"] for f in c.fields],
            status=c.status,
            strategy=_strategy(c.strategy),
            resolved_by=c.resolved_by,
            detected_at=c.detected_at,
            resolved_at=c.resolved_at,
        )


def _strategy(stored: str | None) -> Any:
    return stored.upper() if stored else None


class Conflict(Model):
    id: int
    pipeline: str
    entity: str
    record_key: str
    fields: list[ConflictField]
    status: Literal["open", "resolved", "ignored"]
    strategy: ApiStrategy | None
    resolved_value: Any = Field(None, description="the record the decision settled on")
    reason: str | None
    resolved_by: str | None
    detected_at: UtcTime
    resolved_at: UtcTime | None

    @classmethod
    def of(cls, c: ConflictView) -> Self:
        return cls(
            id=c.id,
            pipeline=c.pipeline,
            entity=c.entity,
            record_key=c.record_key,
            fields=[ConflictField(**f) for f in c.fields],
            status=c.status,
            strategy=_strategy(c.strategy),
            resolved_value=c.resolved_value,
            reason=c.reason,
            resolved_by=c.resolved_by,
            detected_at=c.detected_at,
            resolved_at=c.resolved_at,
        )


class ConflictPage(Model):
    items: list[ConflictSummary]
    total: int
    limit: int
    offset: int


class ConflictResolve(Model):
    strategy: ApiStrategy = Field(examples=["USE_REMOTE"])
    value: Any = Field(
        None,
        examples=[{"phone": "555-0199"}],
        description="MANUAL: the record as it should be; MERGE: the fields both sides changed",
    )
    reason: str = Field(min_length=1, max_length=2000, examples=["the clinic confirmed it"])

    @model_validator(mode="after")
    def _manual_needs_value(self) -> Self:
        if self.strategy == "MANUAL" and self.value is None:
            raise ValueError("MANUAL needs a value: the record as it should be")
        return self


# -- webhooks ------------------------------------------------------------------------------


class WebhookCreate(Model):
    url: str = Field(
        max_length=2000,
        pattern=r"^https?://[^\s/?#]+[^\s]*$",
        examples=["https://hooks.example.org/pacsync"],
    )
    events: list[str] = Field(
        min_length=1,
        max_length=20,
        examples=[["job.failed", "dead_letter.created"]],
        description="event names, a family such as 'job.*', or '*': " + ", ".join(EVENTS),
    )
    pipelines: list[EventScope] = Field(
        default_factory=list,
        max_length=100,
        description="empty: every pipeline; 'fhir:CONNECTION' for a FHIR connection's syncs",
    )
    description: str | None = Field(None, max_length=500)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = [e for e in events if not valid_subscription(e)]
        if unknown:
            raise ValueError(
                f"unknown event '{unknown[0][:100]}'; valid: {', '.join(EVENTS)}, "
                "a family such as 'job.*', or '*'"
            )
        return events


class Webhook(Model):
    id: str = Field(examples=["3f9a0c1d2e4b5a69"])
    url: str
    description: str | None
    events: list[str]
    pipelines: list[str]
    active: bool
    created_at: UtcTime

    @classmethod
    def of(cls, view: WebhookView) -> Self:
        return cls(**{name: getattr(view, name) for name in Webhook.model_fields})


class WebhookCreated(Webhook):
    secret: str = Field(
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        description="signs every message (Standard Webhooks); shown this once",
    )


class Delivery(Model):
    id: int
    webhook_id: str
    message_id: str = Field(examples=["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"])
    event: str = Field(examples=["job.failed"])
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    response_status: int | None = Field(examples=[200])
    response_body: str | None = Field(description="the first 2 KB of the receiver's answer")
    error: str | None
    created_at: UtcTime
    updated_at: UtcTime
    next_attempt_at: UtcTime | None

    @classmethod
    def of(cls, view: DeliveryView) -> Self:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class WebhookDetail(Webhook):
    recent_deliveries: list[Delivery]


class WebhookDeleted(Model):
    id: str
    deleted: Literal[True] = True


class DeliveriesQueued(Model):
    webhook_id: str
    requeued: list[int] = Field(description="the deliveries queued again")


Scheme = Literal["standard-webhooks", "github", "hmac-sha512"]


class SourcePut(Model):
    scheme: Scheme
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=500,
        description="write-only; the sender's shared secret (whsec_… for standard-webhooks). "
        "Without it a new source gets a generated one, shown once",
    )
    pipeline: PipelineName = Field(examples=["pms-hl7"], description="the pipeline a message runs")
    mode: Literal["full", "incremental"] = "incremental"
    entities: list[EntityName] = Field(
        default_factory=list, max_length=100, description="empty: every entity"
    )


class Source(Model):
    source: str = Field(examples=["ehr"])
    scheme: Scheme
    pipeline: str | None
    mode: str | None
    entities: list[str] | None
    created_at: UtcTime

    @classmethod
    def of(cls, view: SourceView) -> Self:
        return cls(**{name: getattr(view, name) for name in Source.model_fields})


class SourceSaved(Source):
    secret: str | None = Field(None, description="a generated secret, shown this once")


class SourceDeleted(Model):
    source: str
    deleted: Literal[True] = True


# -- API keys ------------------------------------------------------------------------------


class ApiKey(Model):
    id: str = Field(examples=["3f9a0c1d2e4b5a69"])
    name: str = Field(examples=["ci"])
    role: Role
    active: bool
    created_at: UtcTime
    last_used_at: UtcTime | None
    revoked_at: UtcTime | None
    rate_limit_per_min: int | None

    @classmethod
    def of(cls, view: ApiKeyView) -> Self:
        return cls(**{name: getattr(view, name) for name in ApiKey.model_fields})


class ApiKeyCreate(Model):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S", examples=["ci"])
    role: Role = Field(examples=["operator"])
    rate_limit_per_min: int | None = Field(None, ge=1, le=1_000_000, examples=[120])


class ApiKeyCreated(ApiKey):
    token: str = Field(
        examples=["psk_3f9a0c1d2e4b5a69_…"], description="the bearer token, shown this once"
    )


class ApiKeyRevoked(Model):
    id: str
    revoked: Literal[True] = True


# -- audit ---------------------------------------------------------------------------------


class AuditRecord(Model):
    id: int
    at: UtcTime = Field(description="UTC")
    actor: str = Field(examples=["key:3f9a0c1d2e4b5a69"])
    action: str = Field(examples=["job.cancel"])
    target: str | None = Field(examples=["0b6f0e0c-3f4e-4a9e-9a7e-2f1c9b2d5e41"])
    outcome: str = Field(examples=["ok"], description="ok, denied, a PACS code or HTTP status")
    detail: dict[str, Any] | None
    source_ip: str | None = Field(examples=["10.0.0.7"])


class AuditPage(Model):
    items: list[AuditRecord]
    total: int
    limit: int
    offset: int
