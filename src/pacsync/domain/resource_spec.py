"""An entity read from the FHIR resources pacsync holds (what processed HL7 messages
mapped to): ``source: {resources: Patient, columns: {...}}`` on a ``pacsync:store``
connection.  Each column names a path into the resource (``name.0.family``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from pacsync.domain.spec_base import Spec

STORE_URL = "pacsync:store"
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$")


class ResourceSpec(Spec):
    """Resources of one FHIR type as rows: ``columns`` maps each column's name to its
    path (keys and list positions, dot-separated); the key is the resource's id."""

    resources: str = Field(pattern=r"^[A-Z][A-Za-z]+$", description="FHIR type, e.g. Patient")
    key: list[str] = Field(default_factory=lambda: ["id"], min_length=1, max_length=1)
    columns: dict[str, str] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _paths(cls, columns: dict[str, str]) -> dict[str, str]:
        for name, path in columns.items():
            if not _PATH.match(path):
                raise ValueError(
                    f"column '{name}': '{path}' is not a path such as name.0.family "
                    "(keys and list positions, dot-separated)"
                )
        return columns

    @model_validator(mode="after")
    def _keyed_by_id(self) -> ResourceSpec:
        (key,) = self.key
        if self.columns.get(key) != "id":
            raise ValueError(f"the key column '{key}' must be the resource's id (path: id)")
        return self

    @property
    def table(self) -> str:
        """What the entity reads, where a table name would be shown."""
        return f"{self.resources} resources"

    @property
    def db_schema(self) -> None:
        return None


def value_at(resource: Any, path: str) -> Any:
    """The value at ``path`` in a resource (None where it has none)."""
    value = resource
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value
