"""What cannot be read comes out as PACS-601, naming the segment and field at fault."""

from __future__ import annotations

import pytest
from hl7_fixture_files import message_text

from pacsync.connectors.hl7.records import SUPPORTED_TRIGGERS, parse_message, patient_of
from pacsync.errors import InvalidHl7Message, TerminalError

MSH = "MSH|^~\\&|APP|FAC|PACSYNC|FAC|20260315143012+0100||{type}|C1|P|2.5.1\r"


def _error(text: str) -> InvalidHl7Message:
    with pytest.raises(InvalidHl7Message) as caught:
        parse_message(text)
    return caught.value


def test_the_error_is_terminal_and_coded() -> None:
    error = _error(MSH.format(type="ADT^A02") + "PID|1||1^^^H^MR\r")

    assert isinstance(error, TerminalError)
    assert error.code == "PACS-601"
    assert not error.transient
    assert error.as_dict()["code"] == "PACS-601"


def test_unsupported_trigger_names_msh_9_and_lists_what_is_supported() -> None:
    error = _error(MSH.format(type="ADT^A02") + "PID|1||1^^^H^MR\r")

    assert error.location == "MSH-9"
    assert "ADT^A02" in error.message
    assert "ADT^A01" in error.hint
    assert "ORU^R01" in error.hint
    assert len(SUPPORTED_TRIGGERS) == 13


@pytest.mark.parametrize(
    ("message_type", "body", "missing"),
    [
        ("ADT^A01", "EVN|A01\rPV1|1|I\r", "PID"),
        ("ADT^A40", "EVN|A40\rPID|1||1^^^H^MR\r", "MRG"),
        ("SIU^S12", "PID|1||1^^^H^MR\r", "SCH"),
        ("DFT^P03", "PID|1||1^^^H^MR\rPV1|1|O\r", "FT1"),
        ("DFT^P03", "FT1|1|T1||20260101||CG|99213\r", "PID"),
        ("ORU^R01", "PID|1||1^^^H^MR\rOBX|1|NM|GLU||5\r", "OBR"),
    ],
)
def test_a_missing_required_segment_is_named(message_type: str, body: str, missing: str) -> None:
    error = _error(MSH.format(type=message_type) + body)

    assert error.location == missing
    assert f"no {missing} segment" in error.message
    assert message_type in error.message


def test_an_order_with_final_status_and_no_obx_is_refused() -> None:
    error = _error(MSH.format(type="ORU^R01") + "OBR|1||L1|GLU^Glucose^LN" + "|" * 21 + "F\r")

    assert error.location == "OBR"
    assert "no OBX" in error.message


def test_an_obx_before_any_obr_is_refused() -> None:
    error = _error(MSH.format(type="ORU^R01") + "OBX|1|NM|GLU||5\rOBR|1||L1|GLU\rOBX|1|NM|G||5\r")

    assert error.location == "OBX"
    assert "before any OBR" in error.message


@pytest.mark.parametrize(
    ("segment", "location"),
    [
        ("PID|1||1^^^H^MR||Doe^Jo||19621340", "PID-7.1"),  # month 13
        ("PID|1||1^^^H^MR||Doe^Jo||1962-03-14", "PID-7.1"),
        ("PID|1||1^^^H^MR||Doe^Jo||19620314+2500", "PID-7.1"),  # no such offset
        ("PID|1||1^^^H^MR||Doe^Jo||20260230", "PID-7.1"),  # 30 February
    ],
)
def test_a_bad_date_names_its_field_and_the_format(segment: str, location: str) -> None:
    error = _error(MSH.format(type="ADT^A08") + segment + "\r")

    assert error.location == location
    assert "YYYY[MM[DD" in error.message
    assert "20260315" in error.hint


def test_a_bad_date_deep_in_a_message_names_the_segment_occurrence() -> None:
    text = message_text("oru_r01").replace("20261001", "2026100")

    error = _error(text)

    assert error.location == "OBX(9)-5.1"


def test_a_bad_number_in_an_nm_result_is_refused() -> None:
    text = message_text("oru_r01").replace("||182|", "||1 82|")

    error = _error(text)

    assert error.location == "OBX-5.1"
    assert "'1 82' is not a number" in error.message


def test_a_bad_hex_escape_is_refused() -> None:
    error = _error(MSH.format(type="ADT^A08") + "PID|1||1^^^H^MR||Doe\\XZZ\\^Jo\r")

    assert error.location == "PID-5.1"
    assert "hex" in error.message


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("", "MSH"),
        ("PID|1||1^^^H^MR\r", "MSH"),
        ("MSH|^~\\\r", "MSH"),
        ("MSH|^^^^|A\r", "MSH-2"),
        ("MSH|^~\\&|A|B|C|D|20260101||ADT^A01||P|2.5.1\rPID|1||1^^^H^MR\r", "MSH-10"),
        (MSH.format(type="ADT^A01") + "PID|1||^^^H^MR\r", "PID-3"),
        (MSH.format(type="ADT^A40") + "PID|1||1^^^H^MR\rMRG|\r", "MRG-1"),
        (MSH.format(type="ADT^A40") + "MRG|2^^^H^MR\rPID|1||1^^^H^MR\r", "MRG"),
        (MSH.format(type="SIU^S12") + "SCH|||\r", "SCH-2"),
        (MSH.format(type="DFT^P03") + "PID|1||1^^^H^MR\rFT1|1|T1\r", "FT1-7"),
        (MSH.format(type="ORU^R01") + "OBR|1||L|\rOBX|1|NM|G||1\r", "OBR-4"),
        (MSH.format(type="ORU^R01") + "OBR|1||L|G\rOBX|1|NM|||1\r", "OBX-3"),
        (MSH.format(type="ORU^R01") + "OBR|1||L|G\rOBX|1||G||1\r", "OBX-2"),
        (MSH.format(type="ORU^R01") + "OBR|1||L|G\rOBX|1|SN|G||=>^1\r", "OBX-5.1"),
        (MSH.format(type="ORU^R01") + "OBR|1||L|G\rOBX|1|TM|G||25h\r", "OBX-5.1"),
        (MSH.format(type="ORU^R01") + "PID|1||1^^^H\rPID|2||2^^^H\rOBR|1||L|G\r", "PID"),
        (MSH.format(type="SIU^S12") + "SCH||A1|||||||30|FORTNIGHT\r", "SCH-10"),
    ],
)
def test_every_refusal_says_where(text: str, location: str) -> None:
    error = _error(text)

    assert error.location == location
    assert error.message
    assert error.hint


def test_a_hex_escape_is_read_in_the_character_set_of_msh_18() -> None:
    latin = MSH.format(type="ADT^A08").replace("|2.5.1\r", "|2.5.1||||||8859/1\r")
    utf8 = MSH.format(type="ADT^A08")

    latin_name = parse_message(latin + "PID|1||1^^^H^MR||Ren\\XE9\\e\r").patient
    utf8_name = parse_message(utf8 + "PID|1||1^^^H^MR||Ren\\XC3A9\\e\r").patient

    assert latin_name is not None
    assert utf8_name is not None
    assert latin_name.names[0].family == utf8_name.names[0].family == "Renée"


@pytest.mark.parametrize(
    ("segments", "patient"),
    [
        ("PID|1||X1^^^H^PI~M2^^^H^MR||Doe^Jo||1970-13-45\r", "M2"),  # the MR one, date unread
        ("PID|1||X1^^^H^PI~X2^^^H^PI\r", "X1"),  # no MR: the first
        ("PID|1||\r", None),
        ("EVN|A01\r", None),  # no PID at all
    ],
)
def test_the_patient_of_a_message_that_cannot_be_read(segments: str, patient: str | None) -> None:
    text = MSH.format(type="ADT^A01") + segments
    assert patient_of(text) == patient


def test_no_patient_in_what_is_not_hl7() -> None:
    assert patient_of("NOT HL7 AT ALL") is None
    assert patient_of("MSH|^^^^|broken") is None
