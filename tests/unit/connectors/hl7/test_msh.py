"""Reading MSH: the fields acceptance needs, MSH-18 character sets, and what is not HL7."""

from __future__ import annotations

import pytest
from hl7_fixture_files import FIXTURES

from pacsync.connectors.hl7 import msh
from pacsync.connectors.hl7.msh import Header, HeaderError, decode, read_header


def header_bytes(*, charset: str = "", fields: dict[int, str] | None = None) -> bytes:
    """An MSH segment; ``fields`` replaces MSH-n (n >= 3) by number."""
    values = {
        3: "PMS",
        4: "CLINIC",
        5: "PACSYNC",
        6: "HOSP",
        7: "20260101120000",
        9: "ADT^A01^ADT_A01",
        10: "MSG0001",
        11: "P",
        12: "2.5.1",
        18: charset,
    }
    values.update(fields or {})
    last = max(n for n, v in values.items() if v)
    parts = ["MSH", "^~\\&"] + [values.get(n, "") for n in range(3, last + 1)]
    return "|".join(parts).encode("latin-1")


def test_the_header_fields_acceptance_needs() -> None:
    header = read_header(header_bytes() + b"\rPID|1||42\r")
    assert header == Header(
        field_separator="|",
        encoding_characters="^~\\&",
        sending_application="PMS",
        sending_facility="CLINIC",
        receiving_application="PACSYNC",
        receiving_facility="HOSP",
        message_type="ADT",
        trigger="A01",
        control_id="MSG0001",
        processing_id="P",
        version="2.5.1",
        accept_ack="",
        application_ack="",
        charset="",
        encoding="utf-8",
        segment=header_bytes().decode(),
    )
    assert header.sender == "PMS|CLINIC"
    assert header.kind == "ADT^A01"
    assert not header.enhanced


def test_components_of_processing_id_and_version_are_cut_to_the_first() -> None:
    header = read_header(header_bytes(fields={11: "P^T", 12: "2.4^USA&&ISO"}) + b"\r")
    assert (header.processing_id, header.version) == ("P", "2.4")


def test_a_type_without_trigger_has_kind_of_the_type_alone() -> None:
    header = read_header(header_bytes(fields={9: "ACK"}))
    assert (header.message_type, header.trigger, header.kind) == ("ACK", "", "ACK")


def test_enhanced_mode_is_msh_15_or_msh_16_valued_and_read_in_upper_case() -> None:
    assert read_header(header_bytes(fields={15: "al"})).accept_ack == "AL"
    assert read_header(header_bytes(fields={15: "AL"})).enhanced
    assert read_header(header_bytes(fields={16: "NE"})).enhanced
    assert not read_header(header_bytes(fields={13: "7"})).enhanced


@pytest.mark.parametrize("end", [b"\r", b"\n", b"\r\n"])
def test_the_segment_ends_at_cr_or_lf(end: bytes) -> None:
    header = read_header(header_bytes() + end + b"EVN|A01\r")
    assert header.control_id == "MSG0001"
    assert "EVN" not in header.segment


def test_other_delimiters_are_read_from_msh_1_and_msh_2() -> None:
    raw = b"MSH#$%*@#PMS#CLINIC#PACSYNC#HOSP#20260101##ORU$R01#C9#T#2.3.1\r"
    header = read_header(raw)
    assert (header.field_separator, header.encoding_characters) == ("#", "$%*@")
    assert (header.message_type, header.trigger, header.control_id) == ("ORU", "R01", "C9")
    assert header.processing_id == "T"


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [
        ("UNICODE UTF-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("ISO IR192", "utf-8"),
        ("8859/1", "iso8859-1"),
        ("ISO IR100", "iso8859-1"),
        ("8859/15", "iso8859-15"),
        ("ASCII", "ascii"),
        ("unicode utf-8", "utf-8"),
        ("UNICODE UTF-8~8859/1", "utf-8"),  # the first repetition is the message's
    ],
)
def test_msh_18_names_the_codec(charset: str, encoding: str) -> None:
    header = read_header(header_bytes(charset=charset))
    assert header.encoding == encoding
    assert header.charset == charset.split("~", maxsplit=1)[0]


def test_without_msh_18_the_default_encoding_is_used() -> None:
    assert read_header(header_bytes(), "iso8859-1").encoding == "iso8859-1"
    assert read_header(header_bytes()).encoding == "utf-8"


def test_header_fields_are_decoded_in_the_msh_18_character_set() -> None:
    latin = header_bytes(charset="8859/1", fields={4: "CLINIQUE ÉTÉ"})
    assert read_header(latin).sending_facility == "CLINIQUE ÉTÉ"
    utf8 = header_bytes(charset="UNICODE UTF-8").replace(b"CLINIC", "Zürich".encode())
    assert read_header(utf8).sending_facility == "Zürich"


def test_the_fixtures_are_read_in_their_own_character_set() -> None:
    latin = (FIXTURES / "adt_a31.hl7").read_bytes()
    header = read_header(latin)
    assert (header.charset, header.encoding) == ("8859/1", "iso8859-1")
    assert "Müller^Zoë^Renée" in decode(latin, header)
    utf8 = (FIXTURES / "adt_a01.hl7").read_bytes()
    header = read_header(utf8)
    assert (header.charset, header.encoding) == ("UNICODE UTF-8", "utf-8")
    assert (header.accept_ack, header.application_ack) == ("AL", "NE")
    assert decode(utf8, header).startswith("MSH|")


def test_a_body_not_in_the_msh_18_set_is_a_data_type_error_on_msh_18() -> None:
    raw = header_bytes(charset="UNICODE UTF-8") + b"\rPID|1||42||M\xfcller\r"
    header = read_header(raw)  # MSH itself is valid UTF-8
    with pytest.raises(HeaderError) as caught:
        decode(raw, header)
    assert (caught.value.condition, caught.value.field) == (msh.DATA_TYPE_ERROR, 18)
    assert "utf-8" in caught.value.reason
    assert str(len(header_bytes(charset="UNICODE UTF-8")) + 13) in caught.value.reason


def test_a_header_not_in_its_own_character_set_is_an_error_on_msh_18() -> None:
    raw = header_bytes(charset="UNICODE UTF-8", fields={4: "CAF\xc9"})
    with pytest.raises(HeaderError) as caught:
        read_header(raw)
    assert (caught.value.condition, caught.value.field) == (msh.DATA_TYPE_ERROR, 18)


@pytest.mark.parametrize("charset", ["KLINGON", "rot13", "base64", "hex", "zlib", "\x00"])
def test_msh_18_naming_no_text_character_set_is_an_error_on_msh_18(charset: str) -> None:
    with pytest.raises(HeaderError) as caught:
        read_header(header_bytes(charset=charset))
    assert (caught.value.condition, caught.value.field) == (msh.DATA_TYPE_ERROR, 18)
    assert "MSH-18" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "condition", "field"),
    [
        (b"", msh.SEGMENT_SEQUENCE_ERROR, None),
        (b"PID|1||42\rMSH|^~\\&|A\r", msh.SEGMENT_SEQUENCE_ERROR, None),
        (b"GET / HTTP/1.1\r\n", msh.SEGMENT_SEQUENCE_ERROR, None),
        (b"MSH|", msh.SEGMENT_SEQUENCE_ERROR, None),
        (b"MSH\rPID|1||42\r", msh.DATA_TYPE_ERROR, 1),
        (b"MSH\nPID|1||42\r", msh.DATA_TYPE_ERROR, 1),
        (b"MSHA^~\\&A", msh.DATA_TYPE_ERROR, 1),
        (b"MSH|^|PMS|CLINIC\r", msh.DATA_TYPE_ERROR, 2),
        (b"MSH||PMS|CLINIC|X|Y\r", msh.DATA_TYPE_ERROR, 2),
    ],
)
def test_what_is_not_an_msh_is_refused_with_its_condition(
    raw: bytes, condition: int, field: int | None
) -> None:
    with pytest.raises(HeaderError) as caught:
        read_header(raw)
    assert (caught.value.condition, caught.value.field) == (condition, field)
    assert caught.value.reason == str(caught.value)


@pytest.mark.parametrize(("number", "name"), [(10, "MSH-10"), (9, "MSH-9")])
def test_a_missing_control_id_or_type_is_a_required_field_missing(number: int, name: str) -> None:
    with pytest.raises(HeaderError) as caught:
        read_header(header_bytes(fields={number: ""}) + b"\rPID|1\r")
    assert (caught.value.condition, caught.value.field) == (msh.REQUIRED_FIELD_MISSING, number)
    assert name in caught.value.reason


def test_a_header_cut_before_msh_10_is_missing_its_control_id() -> None:
    with pytest.raises(HeaderError) as caught:
        read_header(b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A01\rPID|1\r")
    assert caught.value.field == 10


def test_every_condition_has_its_table_0357_text() -> None:
    assert msh.CONDITION_TEXT[msh.UNSUPPORTED_MESSAGE_TYPE] == "Unsupported message type"
    assert msh.CONDITION_TEXT[msh.REQUIRED_FIELD_MISSING] == "Required field missing"
    assert set(msh.CONDITION_TEXT) == {100, 101, 102, 200, 201, 202, 203, 207}


def test_a_control_id_longer_than_msh_10_holds_is_refused() -> None:
    assert read_header(header_bytes(fields={10: "C" * 199})).control_id == "C" * 199
    with pytest.raises(HeaderError) as caught:
        read_header(header_bytes(fields={10: "C" * 199 + "2"}))
    assert (caught.value.condition, caught.value.field) == (msh.DATA_TYPE_ERROR, 10)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"MSH|^~^&|PMS|CLINIC|X|Y|2026||ADT^A01|C1|P|2.5\r", 2),  # a mark twice
        (b"MSH|^~\\|PMS|CLINIC|X|Y|2026||ADT^A01|C1|P|2.5\r", 2),  # three marks
        (b"MSH|^~\\&#$|PMS|CLINIC|X|Y|2026||ADT^A01|C1|P|2.5\r", 2),  # six
        (b"MSH|^A\\&|PMS|CLINIC|X|Y|2026||ADT^A01|C1|P|2.5\r", 2),  # a letter
        (b"MSH\x00^~\\&\x00PMS\x00CLINIC\x00X\x00Y\x002026\x00\x00ADT^A01\x00C1\r", 1),
        (b"MSH ^~\\& PMS CLINIC X Y 2026  ADT^A01 C1 P 2.5\r", 1),
    ],
)
def test_delimiters_must_be_distinct_printable_marks(raw: bytes, field: int) -> None:
    with pytest.raises(HeaderError) as caught:
        read_header(raw)
    assert (caught.value.condition, caught.value.field) == (msh.DATA_TYPE_ERROR, field)


def test_msh_2_may_hold_the_truncation_character_of_2_7() -> None:
    header = read_header(b"MSH|^~\\&#|PMS|CLINIC|X|Y|2026||ADT^A01|C1|P|2.7\r")
    assert (header.encoding_characters, header.control_id) == ("^~\\&#", "C1")
