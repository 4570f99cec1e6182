"""Drop entities in pipeline files: what they accept, and errors naming file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsync.config import load_pipeline
from pacsync.errors import ConfigError

PIPELINE = """\
name: pms
connections:
  exports: {url: "file:${DROPS:-/srv/pms}"}
  warehouse: {url: "sqlite:///w.db"}
source: {connection: exports}
destination: {connection: warehouse}
entities:
  patients:
    source:
      drop: patients
      pattern: "patients_*.csv"
      format: csv
      delimiter: ";"
      encoding: latin-1
      columns: [id, name]
      key: [id]
    target: {table: patients}
    fields:
      id: {from: id, type: integer}
      name: {from: name}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "pms.yaml"
    path.write_text(text)
    return load_pipeline(path, environ={})


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    return error.value.message


def test_a_drop_entity_is_read_with_its_folder_connection(tmp_path: Path) -> None:
    spec = load_pipeline(_write(tmp_path, PIPELINE), environ={"DROPS": "/data/in"})
    drop = spec.entities["patients"].drop
    assert drop is not None
    assert (drop.drop, drop.pattern, drop.delimiter, drop.encoding) == (
        "patients",
        "patients_*.csv",
        ";",
        "latin-1",
    )
    assert (drop.ready, drop.quiet_s, drop.archive, drop.error) == (
        "quiet",
        5.0,
        "archive",
        "error",
    )
    assert spec.connections["exports"].folder == "/data/in"
    assert spec.connections["warehouse"].folder is None
    assert spec.entities["patients"].key_fields == ["id"]


def test_file_urls_with_and_without_slashes_name_the_folder(tmp_path: Path) -> None:
    for url, folder in (("file:///srv/in", "/srv/in"), ("file:drops", "drops")):
        spec = load_pipeline(
            _write(tmp_path, PIPELINE.replace('"file:${DROPS:-/srv/pms}"', url)), environ={}
        )
        assert spec.connections["exports"].folder == folder


def test_a_typo_in_a_drop_source_names_file_line_field_and_choices(tmp_path: Path) -> None:
    message = refused(tmp_path, PIPELINE.replace("delimiter:", "delimter:"))
    assert message.startswith(f"{tmp_path / 'pms.yaml'}:13: entities.patients.source.delimter:")
    assert "unknown field 'delimter'; valid: archive, columns, delimiter, drop," in message


def test_a_wrong_format_lists_the_formats(tmp_path: Path) -> None:
    message = refused(tmp_path, PIPELINE.replace("format: csv", "format: cvs"))
    assert ":12: entities.patients.source.format:" in message
    assert "'csv', 'json', 'ndjson' or 'xml' (got 'cvs')" in message


def test_a_typo_in_a_table_source_still_lists_table_fields(tmp_path: Path) -> None:
    text = PIPELINE.replace(
        """    source:
      drop: patients""",
        """    source:
      table: Patients
      kee: [id]
      drop_: patients""",
    )
    message = refused(tmp_path, text)
    assert "entities.patients.source." in message
    assert "valid: key, schema, table" in message


def test_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, PIPELINE.replace("latin-1", "latin-9x"))
    assert ":14: entities.patients.source.encoding:" in message
    assert "unknown encoding 'latin-9x'" in message


def test_columns_must_hold_the_key_and_what_the_mapping_reads(tmp_path: Path) -> None:
    message = refused(tmp_path, PIPELINE.replace("columns: [id, name]", "columns: [id, nom]"))
    assert "the mapping reads column 'name', which the files do not have" in message
    message = refused(tmp_path, PIPELINE.replace("columns: [id, name]", "columns: [ident, name]"))
    assert "key column 'id' is not one of the columns" in message


def test_xml_needs_a_record_path_and_csv_without_header_needs_columns(tmp_path: Path) -> None:
    assert "needs 'record_path'" in refused(
        tmp_path, PIPELINE.replace("format: csv", "format: xml")
    )
    text = PIPELINE.replace("      columns: [id, name]\n", "      header: false\n")
    assert "without a header needs 'columns'" in refused(tmp_path, text)


def test_a_pipeline_reads_one_kind_of_source(tmp_path: Path) -> None:
    text = PIPELINE.replace("source: {connection: exports}", "source: {connection: warehouse}")
    message = refused(tmp_path, text)
    assert (
        "entity 'patients' reads files but source connection 'warehouse' is a database" in message
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pms.yaml"
    path.write_text(text)
    return path
