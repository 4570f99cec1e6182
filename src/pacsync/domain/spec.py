"""Pipeline specifications: what a pipeline YAML file declares.

A pipeline moves one or more entities from a source connection to a
destination connection.  Each entity names its source table and key, the
incremental strategy, the target table, the field mapping, validation rules
and an optional filter.

A source may instead be a folder connection (``url: file:/path``) whose entities
read files dropped there (``source: {drop: patients, format: csv, ...}``): see
:class:`DropSpec`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.resource_spec import STORE_URL, ResourceSpec
from pacsync.domain.schedule_spec import ScheduleSpec
from pacsync.domain.spec_base import Spec

Strategy = Literal["hash_diff", "cursor", "change_tracking"]
FieldType = Literal[
    "string", "text", "integer", "bigint", "decimal", "float", "boolean", "date", "datetime"
]
RuleName = Literal["required", "range", "regex", "enum", "unique", "reference", "length"]
DeleteMode = Literal["soft", "hard"]
FOLDER_SCHEME = "file:"
MLLP_SCHEME = "mllp://"

MIN_BATCH = 10
MAX_BATCH = 100_000


class ConnectionSpec(Spec):
    url: str = Field(description="SQLAlchemy URL, e.g. mssql+pymssql://user:pw@host/db")
    connect_timeout: int = Field(10, ge=1, le=600)
    options: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    fallback: str | None = Field(
        None, description="another connection to use while this one's circuit is open"
    )

    @property
    def mllp(self) -> tuple[str, int] | None:
        """Host and port of an ``mllp://host:port`` connection (an HL7 receiver), else None."""
        if not self.url.startswith(MLLP_SCHEME):
            return None
        host, _, port = self.url[len(MLLP_SCHEME) :].rstrip("/").rpartition(":")
        return (host, int(port)) if host and port.isdigit() else None

    @property
    def folder(self) -> str | None:
        """The folder of a ``file:`` connection (files are dropped there), else None."""
        if not self.url.startswith(FOLDER_SCHEME):
            return None
        path = self.url[len(FOLDER_SCHEME) :]
        return path[2:] if path.startswith("//") else path


class SourceTableSpec(Spec):
    table: str
    db_schema: str | None = Field(None, alias="schema")
    key: list[str] = Field(min_length=1)


def _source_kind(value: Any) -> str:
    if isinstance(value, DropSpec) or (isinstance(value, dict) and "drop" in value):
        return "<drop>"
    if isinstance(value, ResourceSpec) or (isinstance(value, dict) and "resources" in value):
        return "<resources>"
    return "<table>"


# a table or a drop folder, told apart by the 'drop' field (so errors name one kind's fields)
EntitySource = Annotated[
    Annotated[SourceTableSpec, Tag("<table>")]
    | Annotated[DropSpec, Tag("<drop>")]
    | Annotated[ResourceSpec, Tag("<resources>")],
    Discriminator(_source_kind),
]


class TargetTableSpec(Spec):
    """Where an entity's records go: a table of a database destination, or the HL7 v2
    message each record becomes for an MLLP destination (``{field}`` placeholders,
    ``{control_id}`` and ``{now}``; one segment a line)."""

    table: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    message: str | None = Field(
        None, description="HL7 v2 template of each record's message (MLLP destinations)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> TargetTableSpec:
        if (self.table is None) == (self.message is None):
            raise ValueError("give 'table' (a database destination) or 'message' (MLLP)")
        if self.message is not None and not self.message.lstrip().startswith("MSH"):
            raise ValueError("'message' must start with its MSH segment")
        return self

    @property
    def table_name(self) -> str:
        if self.table is None:
            raise ValueError("this entity's target is a message, not a table")
        return self.table


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
    source: EntitySource
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
    pushdown: bool = Field(
        True, description="Let a PostgreSQL source map and check the rows of a fresh full load"
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
        resources = isinstance(self.source, ResourceSpec)
        if resources and (self.strategy != "hash_diff" or self.cursor is not None):
            raise ValueError("FHIR resources have no cursor or change feed: strategy hash_diff")
        if isinstance(self.source, DropSpec | ResourceSpec):
            if self.strategy == "cursor" or self.cursor is not None:
                raise ValueError("a drop entity has no cursor: files are read whole, once")
            declared = list(self.source.columns)
            read = {c for f in self.fields.values() for c in _inputs(f)}
            unknown = sorted(read - set(declared)) if declared else []
            if unknown:
                where = "the resources' columns" if resources else "the files"
                raise ValueError(
                    f"the mapping reads column '{unknown[0]}', which {where} do not have; "
                    "columns are: " + ", ".join(declared)
                )
        return self

    @property
    def drop(self) -> DropSpec | None:
        """The files the entity reads, when its source is a drop folder."""
        return self.source if isinstance(self.source, DropSpec) else None

    @property
    def resources(self) -> ResourceSpec | None:
        """The FHIR resources the entity reads, when its source is pacsync's store."""
        return self.source if isinstance(self.source, ResourceSpec) else None

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


def _inputs(spec: FieldSpec) -> list[str]:
    if spec.source:
        return [spec.source]
    if spec.concat:
        return list(spec.concat)
    if spec.split:
        return [spec.split.source]
    return []


class EndpointSpec(Spec):
    connection: str


class DestinationSpec(Spec):
    connection: str
    db_schema: str | None = Field(None, alias="schema")
    delete_mode: DeleteMode = "soft"


class RetrySpec(Spec):
    attempts: int = Field(3, ge=1, le=10, description="Tries in all, for transient errors only")
    backoff_s: float = Field(2.0, ge=0, le=600, description="First wait; doubles each time")


_HOLDS = {
    "files": "a folder (file:)",
    "resources": f"pacsync's FHIR resources ({STORE_URL})",
    "a table": "a database",
}


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
        reading = self.connections[self.source.connection]
        kind = "files" if reading.folder else "resources" if reading.url == STORE_URL else "a table"
        for entity_name, entity in self.entities.items():
            wants = "files" if entity.drop else "resources" if entity.resources else "a table"
            if wants != kind:
                raise ValueError(
                    f"entity '{entity_name}' reads {wants} but source connection "
                    f"'{self.source.connection}' is {_HOLDS[kind]}; "
                    "a pipeline reads one kind of source"
                )
        sends = self.connections[self.destination.connection].url.startswith(MLLP_SCHEME)
        if sends and self.connections[self.destination.connection].mllp is None:
            raise ValueError(
                f"destination connection '{self.destination.connection}' is not mllp://host:port"
            )
        for entity_name, entity in self.entities.items():
            if sends != (entity.target.message is not None):
                raise ValueError(
                    f"entity '{entity_name}' "
                    + ("needs target.message: its destination is an MLLP receiver"
                       if sends else "needs target.table: its destination is a database")
                )  # fmt: skip
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
