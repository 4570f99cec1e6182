"""A drop entity's source: files of one kind dropped in a folder (see ``spec``)."""

from __future__ import annotations

import codecs
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pacsync.domain.spec_base import Spec

FileFormat = Literal["csv", "json", "ndjson", "xml"]
FileReady = Literal["quiet", "marker"]


class DropSpec(Spec):
    """Files of one kind dropped in a folder: which files, how to read them, their key.

    ``columns`` are the names a record carries: a CSV file's header (or its columns in
    order when ``header`` is false), the keys of a JSON object, the child elements of an
    XML record (``@name`` for its attributes, ``Child/Grandchild`` for nested ones).
    Without ``columns`` the columns the mapping reads are expected.
    """

    drop: str = Field(description="folder of the files, relative to the connection's folder")
    pattern: str = Field("*", description="file names to read, e.g. patients_*.csv")
    format: FileFormat
    key: list[str] = Field(min_length=1)
    columns: list[str] = Field(default_factory=list)
    header: bool = True
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    nulls: list[str] = Field(default_factory=lambda: [""], description="values read as null")
    record_path: str | None = Field(
        None,
        description="XML: the repeated record element (Export/Patients/Patient); "
        "JSON: dotted path of the array in the document (data.patients)",
    )
    snapshot: bool = Field(
        False, description="each file holds every record: stored keys missing from it are deleted"
    )
    ready: FileReady = Field(
        "quiet", description="a file is complete when unchanged for quiet_s, or has a marker"
    )
    quiet_s: float = Field(5.0, ge=0, le=3600)
    marker: str = Field(".done", min_length=1, description="suffix of the marker file")
    archive: str = Field("archive", description="where loaded files go (in the drop folder)")
    error: str = Field("error", description="where refused files go (in the drop folder)")

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding '{value}' (e.g. utf-8, latin-1, cp1252)") from None
        return value

    @model_validator(mode="after")
    def _readable(self) -> DropSpec:
        if not self.header and self.format == "csv" and not self.columns:
            raise ValueError("a CSV file without a header needs 'columns' in file order")
        if self.format == "xml" and not self.record_path:
            raise ValueError("an XML drop needs 'record_path', the repeated record element")
        if self.format == "ndjson" and self.record_path:
            raise ValueError("'record_path' does not apply to NDJSON (one record a line)")
        missing = [k for k in self.key if self.columns and k not in self.columns]
        if missing:
            raise ValueError(f"key column '{missing[0]}' is not one of the columns")
        return self

    @property
    def table(self) -> str:
        """What the entity reads, where a table name would be shown."""
        return f"{self.drop}/{self.pattern}"

    @property
    def db_schema(self) -> None:
        return None
