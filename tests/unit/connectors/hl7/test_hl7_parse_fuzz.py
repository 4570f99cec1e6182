"""Arbitrary segment soup: the parser returns records or raises PACS-601, nothing else."""

from __future__ import annotations

import pytest
from hl7_fixture_files import all_names, message_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsync.connectors.hl7.records import parse_message
from pacsync.domain.clinical import ParsedMessage
from pacsync.errors import InvalidHl7Message

SEGMENT_IDS = ["MSH", "EVN", "PID", "PV1", "MRG", "SCH", "AIS", "AIG", "AIL", "AIP", "RGS"]
SEGMENT_IDS += ["FT1", "ORC", "OBR", "OBX", "NTE", "SPM", "ZZ1", "", "PI"]
TRIGGERS = ["ADT^A01", "ADT^A03", "ADT^A08", "ADT^A40", "SIU^S12", "SIU^S15", "DFT^P03"]
TRIGGERS += ["ORU^R01", "ACK", "ADT", "^", ""]
# values built from what HL7 values are made of: delimiters, escapes, digits, dates
PIECES = ["^", "~", "&", "\\", "|", "\\F\\", "\\X41\\", "\\XZ\\", "\\.br\\", '""', "+0100"]
PIECES += ["2026", "0315", "1430", "-", ".", "5", "NM", "SN", "CWE", "TX", "DT", "TM", ">"]
PIECES += ["Müller", "\r", "\n", "\x0b", " ", "F", "MR", "1"]

value = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=6).map("".join)
segment = st.builds(
    lambda name, fields: "|".join([name, *fields]),
    st.sampled_from(SEGMENT_IDS),
    st.lists(value, max_size=26),
)


@st.composite
def messages(draw: st.DrawFn) -> str:
    header = "MSH|^~\\&|APP|FAC|PACSYNC|FAC|{sent}||{trigger}|{control}|P|2.5.1|||||{charset}"
    msh = header.format(
        sent=draw(st.sampled_from(["20260315143012+0100", "2026", "", "x", "20261399"])),
        trigger=draw(st.sampled_from(TRIGGERS)),
        control=draw(st.sampled_from(["C1", "", "\\F\\"])),
        charset=draw(st.sampled_from(["", "8859/1", "UNICODE UTF-8", "ASCII", "??"])),
    )
    body = draw(st.lists(segment, max_size=12))
    return "\r".join([msh, *body])


def _parse_or_refuse(text: str) -> None:
    outcome: ParsedMessage | InvalidHl7Message
    try:
        outcome = parse_message(text)
    except InvalidHl7Message as error:
        outcome = error
    if isinstance(outcome, InvalidHl7Message):
        assert outcome.code == "PACS-601"
        assert outcome.message
        assert outcome.hint
    else:
        assert outcome.trigger
        assert outcome.control_id


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_segment_soup_is_read_or_refused_with_the_coded_error(text: str) -> None:
    _parse_or_refuse(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_read_or_refused_with_the_coded_error(text: str) -> None:
    _parse_or_refuse(text)


@pytest.mark.parametrize("name", all_names())
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_damaged_fixtures_are_read_or_refused_with_the_coded_error(
    name: str, data: st.DataObject
) -> None:
    text = message_text(name)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    insert = data.draw(st.sampled_from(PIECES) | st.text(max_size=5))

    _parse_or_refuse(text[:start] + insert + text[end:])
