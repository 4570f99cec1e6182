"""Tables of the pacsync store (the schema Alembic migrations build)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("pipeline", String(100), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("entities", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("trigger", String(20), nullable=False, server_default="manual"),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("heartbeat_at", DateTime),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("progress", JSON, nullable=False),
    Column("error_code", String(20)),
    Column("error_message", Text),
    Column("error_hint", Text),
    Column("queue", String(40), nullable=False, server_default="sync-jobs"),
    Column("request", JSON),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("executor_id", String(100)),
    Index("ix_jobs_pipeline_status", "pipeline", "status"),
    Index("ix_jobs_created_at", "created_at"),
    Index("ix_jobs_status_created_at", "status", "created_at"),
    Index("ix_jobs_pipeline_created_at", "pipeline", "created_at"),
)

job_errors = Table(
    "job_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False, index=True),
    Column("entity", String(100)),
    Column("code", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("hint", Text),
    Column("transient", Integer, nullable=False, server_default="0"),
    Column("at", DateTime, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("pipeline", String(100), primary_key=True),
    Column("entity", String(100), primary_key=True),
    Column("state", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

record_states = Table(
    "record_states",
    metadata,
    Column("pipeline", String(100), primary_key=True),
    Column("entity", String(100), primary_key=True),
    Column("record_key", String(400), primary_key=True),
    Column("fingerprint", String(40), nullable=False),
    Column("base", JSON),
    Column("updated_at", DateTime, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False, server_default="record"),
    Column("job_id", String(36), index=True),
    Column("pipeline", String(100), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("record_key", String(400), nullable=False),
    Column("fingerprint", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("error_code", String(20), nullable=False),
    Column("rule", String(40), nullable=False),
    Column("field", String(100)),
    Column("message", Text, nullable=False),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("history", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("pipeline", "entity", "record_key", "fingerprint", name="uq_dead_letter"),
    Index("ix_dead_letters_status", "pipeline", "status"),
)

daily_statistics = Table(
    "daily_statistics",
    metadata,
    Column("day", Date, primary_key=True),
    Column("pipeline", String(100), primary_key=True),
    Column("jobs", Integer, nullable=False, server_default="0"),
    Column("succeeded", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("records", BigInteger, nullable=False, server_default="0"),
    Column("bytes", BigInteger, nullable=False, server_default="0"),
    Column("duration_s", Float, nullable=False, server_default="0"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(400)),
    Column("detail", JSON),
    Column("outcome", String(20), nullable=False),
    Column("source_ip", String(64)),
)

workers = Table(
    "workers",
    metadata,
    Column("executor_id", String(100), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", JSON, nullable=False),
    Column("concurrency", Integer),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    Column("taken_over_by", String(100)),
    Column("taken_over_at", DateTime),
)

circuit_breakers = Table(
    "circuit_breakers",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("opened_at", DateTime),
    Column("probe_started_at", DateTime),
    Column("last_error", Text),
    Column("updated_at", DateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
    Column("rate_limit_per_min", Integer),
)

connections = Table(
    "connections",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("url", Text, nullable=False),  # without its password
    Column("options", JSON, nullable=False),
    Column("secret", Text),  # sealed by the secret box
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

conflicts = Table(
    "conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(100), nullable=False),
    Column("entity", String(100), nullable=False),
    Column("record_key", String(400), nullable=False),
    Column("fields", JSON, nullable=False),  # [{field, local, remote, base}]
    Column("status", String(20), nullable=False, server_default="open"),
    Column("strategy", String(20)),
    Column("resolved_value", JSON),
    Column("reason", Text),
    Column("resolved_by", String(200)),
    Column("detected_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Index("ix_conflicts_status", "status"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("events", JSON, nullable=False),
    Column("pipelines", JSON, nullable=False),
    Column("secret", Text, nullable=False),  # sealed
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", DateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", String(24), nullable=False, index=True),
    Column("message_id", String(64), nullable=False),
    Column("event", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("response_status", Integer),
    Column("response_body", Text),  # the first 2 KB
    Column("error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime),
)

webhook_sources = Table(
    "webhook_sources",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("scheme", String(40), nullable=False),
    Column("secret", Text, nullable=False),  # sealed
    Column("pipeline", String(100)),
    Column("mode", String(20)),
    Column("entities", JSON),
    Column("created_at", DateTime, nullable=False),
)

webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("received_at", DateTime, nullable=False),
)


# the tables defined beside their stores (archive index, study timeline, worklist, messages, …)
from pacsync.db import archive_tables as _archive_tables  # noqa: E402, F401
from pacsync.db import deliveries as _deliveries  # noqa: E402, F401
from pacsync.db import fhir_resources as _fhir_resources  # noqa: E402, F401
from pacsync.db import messages as _messages  # noqa: E402, F401
from pacsync.db import study_events as _study_events  # noqa: E402, F401
from pacsync.db import viewer_links as _viewer_links  # noqa: E402, F401
from pacsync.db import worklist as _worklist  # noqa: E402, F401
