"""Acknowledgements, each checked by hl7apy's strict validation as an independent reader."""

from __future__ import annotations

import dataclasses

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_message

from pacsync.connectors.hl7 import msh
from pacsync.connectors.hl7.ack import (
    AckCode,
    ack_code,
    application_ack,
    build_ack,
    unreadable_ack,
    wants_application_ack,
)
from pacsync.connectors.hl7.msh import Header, read_header
from pacsync.connectors.hl7.sender import read_ack

VERSIONS = ["2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"]


def header(
    version: str = "2.5.1",
    *,
    control_id: str = "MSG0001",
    charset: str = "",
    accept: str = "",
    application: str = "",
) -> Header:
    fields = [
        "MSH", "^~\\&", "PMS", "CLINIC", "PACSYNC", "HOSP", "20260101120000", "",
        "ADT^A01^ADT_A01", control_id, "P", version, "", "", accept, application, "", charset,
    ]  # fmt: skip
    raw = "|".join(fields).rstrip("|") + "\rPID|1||42\r"
    return read_header(raw.encode("utf-8" if charset != "8859/1" else "latin-1"))


def validated(ack: bytes, encoding: str = "utf-8") -> Message:
    """The ACK as hl7apy reads it under strict validation (raises when it is not valid)."""
    message = parse_message(
        ack.decode(encoding), validation_level=VALIDATION_LEVEL.STRICT, find_groups=False
    )
    assert message.validate()
    return message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("code", list(AckCode))
def test_every_ack_is_valid_and_answers_the_message(version: str, code: AckCode) -> None:
    request = header(version, control_id=f"CTRL-{version}-{code}")
    ack = build_ack(request, code)
    assert ack.endswith(b"\r")
    parsed = validated(ack)
    assert parsed.msh.msh_9.to_er7() == "ACK^A01^ACK"
    assert parsed.msh.msh_12.to_er7() == version
    assert parsed.msh.msh_11.to_er7() == "P"
    # sender and receiver swapped
    assert [parsed.msh.msh_3.to_er7(), parsed.msh.msh_4.to_er7()] == ["PACSYNC", "HOSP"]
    assert [parsed.msh.msh_5.to_er7(), parsed.msh.msh_6.to_er7()] == ["PMS", "CLINIC"]
    assert parsed.msh.msh_10.to_er7() not in ("", request.control_id)
    assert len(parsed.msh.msh_7.to_er7()) == 14
    assert parsed.msa.msa_1.to_er7() == code.value
    assert parsed.msa.msa_2.to_er7() == request.control_id
    assert not parsed.children.get("ERR")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("code", [AckCode.AE, AckCode.AR, AckCode.CE, AckCode.CR])
def test_an_error_ack_names_the_condition_the_field_and_the_reason(
    version: str, code: AckCode
) -> None:
    request = header(version)
    ack = build_ack(
        request, code, condition=msh.UNSUPPORTED_VERSION_ID, reason="version 9 is odd", field=12
    )
    parsed = validated(ack)
    assert parsed.msa.msa_1.to_er7() == code.value
    assert parsed.msa.msa_2.to_er7() == "MSG0001"
    err = parsed.err
    if version in ("2.3.1", "2.4"):  # ERR-1: segment^sequence^field^code&text&table
        assert err.err_1.to_er7() == "MSH^1^12^203&Unsupported version id&HL70357"
    else:  # ERR-2 the location, ERR-3 the condition, ERR-4 severity, ERR-8 the reason
        assert err.err_2.to_er7() == "MSH^1^12"
        assert err.err_3.to_er7() == "203^Unsupported version id^HL70357"
        assert err.err_4.to_er7() == "E"
        assert err.err_8.to_er7() == "version 9 is odd"
    if version in ("2.7", "2.8"):  # MSA-3 was withdrawn in 2.7
        assert parsed.msa.to_er7() == f"MSA|{code.value}|MSG0001"
    else:
        assert parsed.msa.msa_3.to_er7() == "version 9 is odd"
    assert read_ack(ack).text == "version 9 is odd"


def test_without_a_reason_the_condition_text_is_the_reason() -> None:
    parsed = validated(build_ack(header(), AckCode.AR, condition=msh.UNSUPPORTED_MESSAGE_TYPE))
    assert parsed.err.err_8.to_er7() == "Unsupported message type"
    assert parsed.err.err_2.to_er7() == ""  # no field named: no location


def test_delimiters_in_the_reason_cannot_split_its_field() -> None:
    ack = build_ack(
        header(), AckCode.AE, condition=msh.DATA_TYPE_ERROR, reason="a|b^c~d\\e&f\rg", field=7
    )
    parsed = validated(ack)
    assert parsed.err.err_8.to_er7() == "a b c d e f g"
    assert ack.count(b"\r") == 3  # MSH, MSA, ERR


@pytest.mark.parametrize("version", ["2.4", "2.5.1"])
def test_a_long_reason_is_cut_to_what_its_fields_hold(version: str) -> None:
    ack = build_ack(header(version), AckCode.AE, condition=msh.DATA_TYPE_ERROR, reason="x" * 1000)
    parsed = validated(ack)
    assert parsed.msa.msa_3.to_er7() == "x" * 80  # ST(80)
    if version == "2.5.1":
        assert parsed.err.err_8.to_er7() == "x" * 200


def test_a_long_reason_of_unreadable_bytes_is_cut_to_what_msa_3_holds() -> None:
    parsed = validated(unreadable_ack("y" * 500, msh.SEGMENT_SEQUENCE_ERROR), "ascii")
    assert parsed.msa.msa_3.to_er7() == "y" * 80
    assert parsed.err.err_8.to_er7() == "y" * 200


@pytest.mark.parametrize(
    ("charset", "encoding"), [("8859/1", "iso8859-1"), ("UNICODE UTF-8", "utf-8")]
)
def test_the_ack_is_in_the_message_character_set_and_says_so(charset: str, encoding: str) -> None:
    request = header("2.5.1", charset=charset)
    ack = build_ack(request, AckCode.AE, condition=msh.DATA_TYPE_ERROR, reason="Müller é")
    parsed = validated(ack, encoding)
    assert parsed.msh.msh_18.to_er7() == charset
    assert parsed.err.err_8.to_er7() == "Müller é"
    assert "Müller é".encode(encoding) in ack


def test_acks_of_one_feed_share_a_template_but_echo_their_own_control_id() -> None:
    first = validated(build_ack(header(control_id="A1"), AckCode.AA))
    second = validated(build_ack(header(control_id="B2"), AckCode.AA))
    assert (first.msa.msa_2.to_er7(), second.msa.msa_2.to_er7()) == ("A1", "B2")
    assert first.msh.msh_10.to_er7() != second.msh.msh_10.to_er7()


def test_the_template_does_not_take_the_placeholder_from_a_control_id() -> None:
    # a control id with the template's own placeholder byte must not be echoed twice (the
    # MSH reader refuses control characters; a header made otherwise may still hold one)
    ack = build_ack(dataclasses.replace(header(), control_id="X\x01Y"), AckCode.AA)
    assert read_ack(ack).control_id == "X\x01Y"


def test_an_older_version_has_a_two_component_message_type() -> None:
    raw = b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A01|C1|P|2.3\rPID|1\r"
    ack = build_ack(read_header(raw), AckCode.AA)
    assert b"|ACK^A01|" in ack
    assert (read_ack(ack).code, read_ack(ack).control_id) == ("AA", "C1")


def test_unreadable_bytes_get_an_ascii_reject_without_a_control_id() -> None:
    ack = unreadable_ack("the message does not start with MSH: é|^", msh.SEGMENT_SEQUENCE_ERROR)
    parsed = validated(ack, "ascii")
    assert parsed.msh.msh_12.to_er7() == "2.5.1"
    assert parsed.msa.msa_1.to_er7() == "AR"
    assert parsed.msa.msa_2.to_er7() == "UNKNOWN"
    assert parsed.err.err_3.to_er7() == "100^Segment sequence error^HL70357"
    assert parsed.err.err_8.to_er7() == "the message does not start with MSH:"


TYPE = msh.UNSUPPORTED_MESSAGE_TYPE
INTERNAL = msh.APPLICATION_INTERNAL_ERROR


@pytest.mark.parametrize(
    ("accept", "outcome", "condition", "sent"),
    [
        ("", AckCode.AA, None, AckCode.AA),  # original mode: always answered, A codes
        ("", AckCode.AE, msh.DATA_TYPE_ERROR, AckCode.AE),
        ("", AckCode.AR, TYPE, AckCode.AR),
        ("", AckCode.AR, INTERNAL, AckCode.AR),  # the store down: AR, send again
        ("AL", AckCode.AA, None, AckCode.CA),  # enhanced mode: commit (C) codes
        ("AL", AckCode.AE, msh.DATA_TYPE_ERROR, AckCode.CE),
        ("AL", AckCode.AR, TYPE, AckCode.CR),  # CR: type, trigger, processing id, version
        ("AL", AckCode.AR, msh.UNSUPPORTED_EVENT_CODE, AckCode.CR),
        ("AL", AckCode.AR, msh.UNSUPPORTED_PROCESSING_ID, AckCode.CR),
        ("AL", AckCode.AR, msh.UNSUPPORTED_VERSION_ID, AckCode.CR),
        ("AL", AckCode.AR, INTERNAL, AckCode.CE),  # not committed for another reason: CE
        ("NE", AckCode.AA, None, None),  # never
        ("NE", AckCode.AE, msh.DATA_TYPE_ERROR, None),
        ("NE", AckCode.AR, TYPE, None),
        ("ER", AckCode.AA, None, None),  # errors only
        ("ER", AckCode.AE, msh.DATA_TYPE_ERROR, AckCode.CE),
        ("ER", AckCode.AR, TYPE, AckCode.CR),
        ("ER", AckCode.AR, INTERNAL, AckCode.CE),
        ("SU", AckCode.AA, None, AckCode.CA),  # successes only
        ("SU", AckCode.AE, msh.DATA_TYPE_ERROR, None),
        ("SU", AckCode.AR, TYPE, None),
        ("SU", AckCode.AR, INTERNAL, None),
    ],
)
def test_msh_15_decides_whether_and_how_a_commit_is_acknowledged(
    accept: str, outcome: AckCode, condition: int | None, sent: AckCode | None
) -> None:
    assert ack_code(header(accept=accept), outcome, condition) is sent


def test_msh_16_alone_is_enhanced_mode_with_commit_acks_always() -> None:
    request = header(application="AL")
    assert request.enhanced
    assert ack_code(request, AckCode.AA) is AckCode.CA
    assert ack_code(request, AckCode.AE) is AckCode.CE


def test_an_unreadable_message_is_answered_in_original_mode() -> None:
    assert ack_code(None, AckCode.AR) is AckCode.AR


def test_accepted_codes() -> None:
    assert [c for c in AckCode if c.accepted] == [AckCode.AA, AckCode.CA]


@pytest.mark.parametrize("kind", ["ADT~", "A~B^C", "ADT\\A01"])
def test_a_message_type_the_hl7_package_cannot_take_still_gets_its_ack(kind: str) -> None:
    raw = f"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|2026||{kind}|C77|P|2.5.1\rPID|1\r".encode()
    request = read_header(raw)
    ack = build_ack(request, AckCode.AR, condition=msh.UNSUPPORTED_MESSAGE_TYPE, field=9)
    answer = read_ack(ack)
    assert (answer.code, answer.control_id) == ("AR", "C77")
    msh_fields = ack.split(b"\r")[0].split(b"|")
    assert msh_fields[2:6] == [b"PACSYNC", b"HOSP", b"PMS", b"CLINIC"]
    assert msh_fields[10:12] == [b"P", b"2.5.1"]
    assert msh_fields[8].startswith(b"ACK^")


# -- application acknowledgements (MSH-16) ----------------------------------------------------


@pytest.mark.parametrize(
    ("application", "accepted", "wanted"),
    [
        ("AL", True, True),
        ("AL", False, True),
        ("ER", True, False),
        ("ER", False, True),
        ("SU", True, True),
        ("SU", False, False),
        ("NE", True, False),
        ("NE", False, False),
        ("", True, False),  # MSH-16 empty: none
    ],
)
def test_msh_16_decides_whether_an_application_ack_is_sent(
    application: str, accepted: bool, wanted: bool
) -> None:
    request = header(accept="AL", application=application)
    assert wants_application_ack(request, accepted) is wanted


def test_original_mode_asks_for_no_application_ack_of_its_own() -> None:
    assert not wants_application_ack(header(), True)
    assert not wants_application_ack(header(), False)


def test_an_application_accept_is_a_message_asking_for_a_commit_ack_back() -> None:
    request = header(accept="AL", application="AL", control_id="ORIG1")
    parsed = validated(application_ack(request, AckCode.AA, control_id="APP-ORIG1"))
    assert parsed.msa.msa_1.to_er7() == "AA"
    assert parsed.msa.msa_2.to_er7() == "ORIG1"
    assert parsed.msh.msh_10.to_er7() == "APP-ORIG1"  # the same on every resend
    assert (parsed.msh.msh_15.to_er7(), parsed.msh.msh_16.to_er7()) == ("AL", "NE")
    assert not parsed.children.get("ERR")


@pytest.mark.parametrize("version", VERSIONS)
def test_an_application_error_names_the_segment_and_field_at_fault(version: str) -> None:
    request = header(version, accept="AL", application="ER", control_id="ORIG2")
    ack = application_ack(
        request, AckCode.AE, control_id="APP-ORIG2", condition=msh.DATA_TYPE_ERROR,
        reason="PID-7: '19701345' is not a date", location="PID-7",
    )  # fmt: skip
    parsed = validated(ack)
    assert parsed.msa.msa_1.to_er7() == "AE"
    err = ack.decode().split("\r")[2]
    if version in ("2.3.1", "2.4"):  # ERR-1: segment^sequence^field^code&text&table
        assert err == "ERR|PID^1^7^102&Data type error&HL70357"
    else:  # ERR-2 (ERL), ERR-3 (the condition), ERR-4 (severity), ERR-8 (the reason)
        fields = err.split("|")
        assert fields[2:5] == ["PID^1^7", "102^Data type error^HL70357", "E"]
        assert fields[8] == "PID-7: '19701345' is not a date"
    assert read_ack(ack).text == "PID-7: '19701345' is not a date"  # MSA-3 or ERR-8


@pytest.mark.parametrize(
    ("location", "erl"),
    [
        ("PID-7", "PID^1^7"),
        ("OBX(2)-5", "OBX^2^5"),
        ("PID-3.4", "PID^1^3^1^4"),
        ("MRG", "MRG^1"),
        ("somewhere", ""),  # not a place: ERR-2 left empty
    ],
)
def test_a_location_is_written_as_erl(location: str, erl: str) -> None:
    request = header(accept="AL", application="AL")
    ack = application_ack(
        request, AckCode.AE, control_id="A1", condition=msh.DATA_TYPE_ERROR, location=location
    )
    assert ack.decode().split("\r")[2].split("|")[2] == erl
