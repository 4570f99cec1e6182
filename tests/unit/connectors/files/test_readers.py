"""The file readers on bytes as exports write them: quoting, byte order marks,
encodings, ragged rows, broken JSON lines and XML records."""

from __future__ import annotations

import io
from typing import Any

import pytest

from pacsync.connectors.files.readers import open_records
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileRecord, WrongColumns
from pacsync.errors import DropFileRefused


def read(data: bytes, needed: tuple[str, ...] = ("id", "name"), **spec: Any) -> list[FileRecord]:
    records = open_records(io.BytesIO(data), DropSpec(drop="in", key=["id"], **spec), needed)
    return list(records)


def values(records: list[FileRecord]) -> list[tuple[Any, ...] | None]:
    return [r.values for r in records]


# -- CSV --------------------------------------------------------------------------------------


def test_csv_quoting_keeps_delimiters_doubled_quotes_and_line_breaks() -> None:
    data = b'id,name\n1,"Smith, J"\n2,"say ""hi"""\n3,"two\nlines"\n4,plain\n'
    records = read(data, format="csv")
    assert values(records) == [
        ("1", "Smith, J"),
        ("2", 'say "hi"'),
        ("3", "two\nlines"),
        ("4", "plain"),
    ]
    assert [r.line for r in records] == [2, 3, 4, 6]  # the quoted line break is line 5
    assert [r.index for r in records] == [0, 1, 2, 3]


def test_csv_header_order_may_differ_from_the_declared_columns() -> None:
    opened = open_records(
        io.BytesIO(b"name,id\nAnn,1\n"),
        DropSpec(drop="in", format="csv", key=["id"], columns=["id", "name"]),
        ["id", "name"],
    )
    assert opened.columns == ["name", "id"]
    assert values(list(opened)) == [("Ann", "1")]


def test_csv_utf8_byte_order_mark_is_not_part_of_the_first_column() -> None:
    data = "\ufeffid,name\n1,Zoë\n".encode()
    assert values(read(data, format="csv", columns=["id", "name"])) == [("1", "Zoë")]


def test_csv_latin1_declared_is_decoded() -> None:
    data = "id,name\n1,Müller\n2,Françoise\n".encode("latin-1")
    assert values(read(data, format="csv", encoding="latin-1")) == [
        ("1", "Müller"),
        ("2", "Françoise"),
    ]


def test_csv_bytes_invalid_in_the_encoding_reject_only_their_row() -> None:
    data = "id,name\n1,Müller\n2,Ok\n".encode("latin-1")  # declared utf-8
    records = read(data, format="csv")
    assert records[0].values is None
    assert records[0].problem == "byte 0xfc is not valid utf-8"
    assert records[0].line == 2
    assert records[1].values == ("2", "Ok")


def test_csv_ragged_rows_are_malformed_records_and_the_file_goes_on() -> None:
    data = b"id,name\n1,Ann\n2\n3,Bo,extra\n\n4,Cy\n"
    records = read(data, format="csv")
    assert values(records) == [("1", "Ann"), None, None, ("4", "Cy")]
    assert [r.problem for r in records] == [
        None,
        "1 fields where the header has 2",
        "3 fields where the header has 2",
        None,
    ]
    assert [r.line for r in records] == [2, 3, 4, 6]  # the blank line 5 is skipped
    assert records[2].raw == "3,Bo,extra\n"


def test_csv_broken_quoting_is_a_malformed_record() -> None:
    records = read(b'id,name\n1,"Ann"x\n2,Bo\n', format="csv")
    assert records[0].values is None
    assert "quot" in str(records[0].problem)
    assert records[1].values == ("2", "Bo")


def test_csv_nulls_delimiter_and_no_header() -> None:
    records = read(
        b"1;NULL\n2;\n3;x\n",
        format="csv",
        header=False,
        delimiter=";",
        columns=["id", "name"],
        nulls=["", "NULL"],
    )
    assert values(records) == [("1", None), ("2", None), ("3", "x")]


def test_csv_wrong_header_names_missing_and_unexpected_columns() -> None:
    with pytest.raises(WrongColumns) as refused:
        read(b"id,nam,extra\n1,a,b\n", format="csv", columns=["id", "name"])
    assert refused.value.missing == ["name"]
    assert refused.value.unexpected == ["nam", "extra"]
    assert "missing columns: name" in refused.value.message


def test_csv_without_declared_columns_needs_the_mapped_ones_and_ignores_others() -> None:
    assert values(read(b"id,name,notes\n1,a,b\n", format="csv")) == [("1", "a", "b")]
    with pytest.raises(WrongColumns) as refused:
        read(b"id,notes\n1,b\n", format="csv")
    assert refused.value.missing == ["name"]
    assert refused.value.unexpected == []


def test_csv_empty_file_is_refused() -> None:
    with pytest.raises(DropFileRefused, match="empty"):
        read(b"", format="csv")


# -- JSON -------------------------------------------------------------------------------------


def test_ndjson_bad_lines_are_malformed_records_with_their_line() -> None:
    data = b'{"id": 1, "name": "Ann"}\n\n{"id": 2, "name": \nnot json\n[1, 2]\n{"id": 3}\n'
    records = read(data, format="ndjson")
    assert values(records) == [(1, "Ann"), None, None, None, (3, None)]
    assert [r.line for r in records] == [1, 3, 4, 5, 6]
    assert str(records[1].problem).startswith("not JSON")
    assert records[3].problem == "a JSON list, not an object"


def test_ndjson_nested_columns_by_dotted_path() -> None:
    data = b'{"id": 1, "name": {"family": "Lee", "given": ["Ji"]}}\n'
    records = read(data, needed=("id", "name.family", "name.given"), format="ndjson")
    assert values(records) == [(1, "Lee", '["Ji"]')]


def test_json_array_is_streamed_with_lines_and_non_objects_rejected() -> None:
    data = b'[\n  {"id": 1, "name": "A"},\n  "oops",\n  {"id": 3, "name": null}\n]\n'
    records = read(data, format="json")
    assert values(records) == [(1, "A"), None, (3, None)]
    assert [r.line for r in records] == [2, 3, 4]
    assert records[1].problem == "a JSON str, not an object"


def test_json_array_larger_than_the_read_chunk() -> None:
    items = ",\n".join(f'{{"id": {i}, "name": "{"x" * 50}"}}' for i in range(5000))
    records = read(f"[\n{items}\n]".encode(), format="json")
    assert len(records) == 5000
    assert records[-1].values == (4999, "x" * 50)
    assert records[-1].line == 5001


def test_json_array_that_breaks_off_yields_what_came_before_then_refuses() -> None:
    reader = iter(read_lazily(b'[{"id": 1, "name": "A"},\n{"id": 2, "name": \n'))
    assert next(reader).values == (1, "A")
    with pytest.raises(DropFileRefused, match="not valid JSON at line 2"):
        next(reader)


def read_lazily(data: bytes) -> Any:
    return open_records(
        io.BytesIO(data), DropSpec(drop="in", key=["id"], format="json"), ["id", "name"]
    )


def test_json_document_with_record_path() -> None:
    data = b'{"export": {"patients": [{"id": 7, "name": "Q"}]}}'
    assert values(read(data, format="json", record_path="export.patients")) == [(7, "Q")]
    with pytest.raises(DropFileRefused, match="no array at record_path"):
        read(data, format="json", record_path="export.visits")


def test_json_that_is_not_an_array_is_refused() -> None:
    with pytest.raises(DropFileRefused, match="not a JSON array"):
        read(b'{"id": 1}', format="json")


# -- XML --------------------------------------------------------------------------------------

XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<Export>
  <Patients>
    <Patient id="1">
      <Name use="official"><Family>Lee</Family><Given>Ji</Given></Name>
      <Phone/>
    </Patient>
    <Patient id="2"><Name><Family>O&apos;Brien &amp; Co</Family></Name></Patient>
  </Patients>
</Export>
"""
XML_COLUMNS = ("@id", "Name/Family", "Name/Given", "Name/@use", "Phone")


def test_xml_records_by_path_with_attributes_and_nested_elements() -> None:
    for path in ("Export/Patients/Patient", "Patient", "Patients/Patient"):
        records = read(XML, needed=XML_COLUMNS, format="xml", record_path=path)
        assert values(records) == [
            ("1", "Lee", "Ji", "official", None),
            ("2", "O'Brien & Co", None, None, None),
        ]
        assert [r.line for r in records] == [4, 8]


def test_xml_declared_encoding_wins_and_undeclared_uses_the_entity_encoding() -> None:
    declared = '<?xml version="1.0" encoding="ISO-8859-1"?><R><P><n>Müller</n></P></R>'
    plain = "<R><P><n>Müller</n></P></R>"
    for data, encoding in ((declared, "utf-8"), (plain, "latin-1")):
        records = read(
            data.encode("latin-1"),
            needed=("n",),
            format="xml",
            record_path="P",
            encoding=encoding,
        )
        assert values(records) == [("Müller",)]


def test_xml_not_well_formed_yields_the_records_before_then_refuses() -> None:
    data = b"<R>\n<P><n>a</n></P>\n<P><n>b</P>\n</R>"
    reader = iter(
        open_records(
            io.BytesIO(data),
            DropSpec(drop="in", key=["n"], format="xml", record_path="P"),
            ["n"],
        )
    )
    assert next(reader).values == ("a",)
    with pytest.raises(DropFileRefused, match="not well-formed XML at line 3"):
        next(reader)


def test_xml_with_a_doctype_is_refused() -> None:
    data = b'<!DOCTYPE R [<!ENTITY x "xxxxxxxx">]><R><P><n>&x;</n></P></R>'
    with pytest.raises(DropFileRefused, match="DOCTYPE"):
        read(data, needed=("n",), format="xml", record_path="P")
