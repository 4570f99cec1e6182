"""Pipeline specifications: what a pipeline YAML file declares.

A pipeline moves one or more entities from a source connection to a
destination connection.  Each entity names its source table and key, the
incremental strategy, the target table, the field mapping, validation rules
and an optional filter.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Strategy = Literal["hash_diff", "cursor", "change_tracking"]
FieldType = Literal[
    "string", "text", "integer", "bigint", "decimal", "float", "boolean", "date", "datetime"
]
RuleName = Literal["required", "range", "regex", "enum", "unique", "reference", "length"]
DeleteMode = Literal["soft", "hard"]

MIN_BATCH = 10
MAX_BATCH = 100_000


class Spec(BaseModel):
    """Base: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ConnectionSpec(Spec):
    url: str = Field(description="SQLAlchemy URL, e.g. mssql+pymssql://user:pw@host/db")
    connect_timeout: int = Field(10, ge=1, le=600)
    options: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    fallback: str | None = Field(
        None, description="another connection to use while this one's circuit is open"
    )


class SourceTableSpec(Spec):
    table: str
    db_schema: str | None = Field(None, alias="schema")
    key: list[str] = Field(min_length=1)


class TargetTableSpec(Spec):
    table: str
    db_schema: str | None = Field(None, alias="schema")


class CursorSpec(Spec):
    column: str
    kind: Literal["auto", "rowversion", "timestamp", "number"] = "auto"
    overlap: float = Field(
        0.0, ge=0, description="Re-read window below the saved cursor (seconds or units)"
    )
    key_check_every: int = Field(
        0, ge=0, description="Compare keys to find deletes every N incremental runs (0: never)"
    )


class SplitSpec(Spec):
    source: str = Field(alias="from")
    separator: str = " "
    index: int = 0


class FieldSpec(Spec):
    source: str | None = Field(None, alias="from")
    concat: list[str] | None = None
    separator: str = " "
    split: SplitSpec | None = None
    expr: str | None = None
    type: FieldType = "string"
    length: int | None = Field(None, ge=1)
    precision: int = Field(18, ge=1, le=38)
    scale: int = Field(2, ge=0, le=18)
    formats: list[str] = Field(default_factory=list)
    transforms: list[str | dict[str, Any]] = Field(default_factory=list)
    lookup: dict[str, Any] | None = None
    lookup_default: Any = None
    default: Any = None

    @model_validator(mode="after")
    def _one_origin(self) -> FieldSpec:
        origins = [o for o in (self.source, self.concat, self.split, self.expr) if o is not None]
        if len(origins) > 1:
            raise ValueError("a field takes exactly one of: from, concat, split, expr")
        if not origins and self.default is None:
            raise ValueError("a field needs one of: from, concat, split, expr (or a default)")
        return self


class RuleSpec(Spec):
    field: str
    rule: RuleName
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    values: list[Any] | None = None
    entity: str | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _arguments(self) -> RuleSpec:
        needs = {"regex": "pattern", "enum": "values", "reference": "entity"}
        arg = needs.get(self.rule)
        if arg and getattr(self, arg) is None:
            raise ValueError(f"rule '{self.rule}' needs '{arg}'")
        if self.rule in ("range", "length") and self.min is None and self.max is None:
            raise ValueError(f"rule '{self.rule}' needs 'min' or 'max'")
        return self


class EntitySpec(Spec):
    source: SourceTableSpec
    target: TargetTableSpec
    strategy: Strategy = "hash_diff"
    cursor: CursorSpec | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)
    validate_: list[RuleSpec] = Field(default_factory=list, alias="validate")
    filter: str | None = None
    deletes: Literal["detect", "ignore"] = "detect"
    batch_size: int | None = Field(None, ge=MIN_BATCH, le=MAX_BATCH)
    parallel: int = Field(
        1,
        ge=1,
        le=16,
        description="Processes for a full load into an empty target (integer key, no unique rule)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> EntitySpec:
        if self.strategy == "cursor" and self.cursor is None:
            raise ValueError("strategy 'cursor' needs a 'cursor' section with the column")
        for rule in self.validate_:
            if rule.field not in self.fields:
                raise ValueError(
                    f"validation rule on unknown field '{rule.field}'; fields are: "
                    + ", ".join(self.fields)
                )
        mapped_sources = {f.source for f in self.fields.values() if f.source}
        for key in self.source.key:
            if key not in mapped_sources:
                raise ValueError(f"key column '{key}' must be mapped by a field with from: {key}")
        return self

    @property
    def integer_key(self) -> bool:
        """Key fields are plain integers: they sort alike in every database (text keys may
        collate differently), and a one-column one can be split into ranges."""
        return all(
            self.fields[f].type in ("integer", "bigint") and not self.fields[f].transforms
            for f in self.key_fields
        )

    @property
    def key_fields(self) -> list[str]:
        """Target field names carrying the source key, in key order."""
        by_source = {f.source: name for name, f in self.fields.items() if f.source}
        return [by_source[k] for k in self.source.key]


class EndpointSpec(Spec):
    connection: str


class DestinationSpec(Spec):
    connection: str
    db_schema: str | None = Field(None, alias="schema")
    delete_mode: DeleteMode = "soft"


class RetrySpec(Spec):
    attempts: int = Field(3, ge=1, le=10, description="Tries in all, for transient errors only")
    backoff_s: float = Field(2.0, ge=0, le=600, description="First wait; doubles each time")


SEED_FULL_CRON = "0 2 * * 0"  # Sunday 02:00
SEED_INCREMENTAL_CRON = "0 2 * * 1-6"  # Monday to Saturday 02:00


class ScheduleSpec(Spec):
    """When a pipeline runs by itself; cron in the given time zone, per sync mode."""

    full: str | None = Field(SEED_FULL_CRON, description="cron of the full sync (None: never)")
    incremental: str | None = Field(SEED_INCREMENTAL_CRON, description="cron of the incremental")
    timezone: str = "UTC"
    catch_up: Literal["skip", "latest", "all"] = Field(
        "latest",
        description="after downtime: skip missed runs, run the latest once, or run them all",
    )

    @field_validator("full", "incremental")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value, second_at_beginning=True):
            raise ValueError(
                f"'{value}' is not a cron expression (minute hour day month weekday, "
                "e.g. '0 2 * * 1-6'; six fields put seconds first)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{value}' (use an IANA name like America/Los_Angeles)"
            ) from None
        return value


class PipelineSpec(Spec):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    connections: dict[str, ConnectionSpec] = Field(min_length=1)
    source: EndpointSpec
    destination: DestinationSpec
    batch_size: int = Field(5000, ge=MIN_BATCH, le=MAX_BATCH)
    timeout: float | None = Field(None, gt=0, description="Seconds a job may run (PACS-005)")
    retry: RetrySpec = Field(default_factory=RetrySpec)
    schedule: ScheduleSpec | None = None
    entities: dict[str, EntitySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> PipelineSpec:
        for role, name in (
            ("source", self.source.connection),
            ("destination", self.destination.connection),
        ):
            if name not in self.connections:
                raise ValueError(
                    f"{role} connection '{name}' is not defined; connections are: "
                    + ", ".join(self.connections)
                )
        for name, conn in self.connections.items():
            if conn.fallback is not None and conn.fallback not in self.connections:
                raise ValueError(
                    f"connection '{name}' falls back to unknown connection '{conn.fallback}'; "
                    "connections are: " + ", ".join(self.connections)
                )
        for entity_name, entity in self.entities.items():
            for rule in entity.validate_:
                if rule.rule == "reference" and rule.entity not in self.entities:
                    raise ValueError(
                        f"entity '{entity_name}' references unknown entity '{rule.entity}'; "
                        "entities are: " + ", ".join(self.entities)
                    )
        return self

    def batch_size_for(self, entity: str) -> int:
        return self.entities[entity].batch_size or self.batch_size

    def ordered_entities(self) -> list[str]:
        """Entities with every referenced entity before the ones referring to it."""
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in done:
                return
            if name in path:
                raise ValueError("reference cycle: " + " -> ".join((*path, name)))
            for rule in self.entities[name].validate_:
                if rule.rule == "reference" and rule.entity and rule.entity != name:
                    visit(rule.entity, (*path, name))
            done.append(name)

        for entity in self.entities:
            visit(entity, ())
        return done
