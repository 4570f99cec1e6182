"""Fuzzing the MLLP framer and the MSH reader for a bounded time (a few seconds).

Whatever the bytes: ``read_header`` raises nothing but HeaderError, an accepted
header can always be acknowledged, and the framer never loses a well-formed block
that follows garbage, however the stream is cut.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsync.connectors.hl7.ack import AckCode, build_ack
from pacsync.connectors.hl7.mllp import Framer, Problem, frame
from pacsync.connectors.hl7.msh import CHARSETS, HeaderError, decode, read_header
from pacsync.connectors.hl7.sender import read_ack

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

GOOD = b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A01|GOOD1|P|2.5.1\rPID|1||42\r"

_delimiter = st.sampled_from([*"|^~\\&#$%*@!", "\r", "\n", "\x00", "é", "A", "1"])
_field = st.text(
    alphabet=st.sampled_from([*"AB12.^~\\&|#é\x00 /-", "\r", "\n", "ü", "\x1c"]),
    max_size=12,
)
_charset = st.sampled_from(
    [*CHARSETS, "", "utf-16", "utf-32", "idna", "punycode", "base64", "rot13", "cp500",
     "KLINGON", "8859/99", "\x00", "unicode_escape", "raw_unicode_escape", "utf-7"]
)  # fmt: skip


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """MSH-like segments: odd delimiters, odd fields, any MSH-18, any bytes after."""
    separator = draw(_delimiter)
    if draw(st.booleans()):  # distinct marks, as MSH-2 should be (its parser's way in)
        marks = st.sampled_from([c for c in "^~\\&#$%*@!" if c != separator])
        encoding = "".join(draw(st.lists(marks, min_size=4, max_size=5, unique=True)))
    else:
        encoding = "".join(draw(st.lists(_delimiter, min_size=0, max_size=5)))
    fields = draw(st.lists(_field, max_size=20))
    if draw(st.booleans()):
        fields = fields[:16] + [""] * (16 - len(fields[:16])) + [draw(_charset)]
    text = "MSH" + separator + encoding + separator + separator.join(fields)
    raw = text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), errors="replace")
    return raw + draw(st.binary(max_size=40))


def _read_or_refuse(raw: bytes) -> None:
    """No exception but HeaderError; what is read can be decoded or refused, and answered."""
    refused: HeaderError | None = None
    try:
        header = read_header(raw)
    except HeaderError as error:
        refused = error
    if refused is not None:
        assert refused.condition in (100, 101, 102)
        assert refused.reason
        return
    assert header.control_id
    assert header.message_type
    wrong: HeaderError | None = None
    try:
        decode(raw, header)
    except HeaderError as error:
        wrong = error
    assert wrong is None or wrong.field == 18
    for code in (AckCode.AA, AckCode.AE):
        ack = build_ack(header, code, condition=None if code is AckCode.AA else 102, reason="x")
        answer = read_ack(ack, header.encoding)
        assert (answer.code, answer.control_id) == (code.value, header.control_id)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes_read_as_a_header_or_refused(raw: bytes) -> None:
    _read_or_refuse(raw)


@FUZZ
@given(raw=st.binary(max_size=120).map(lambda tail: b"MSH" + tail))
def test_any_bytes_after_msh_read_as_a_header_or_refused(raw: bytes) -> None:
    _read_or_refuse(raw)


@FUZZ
@given(raw=headers())
def test_msh_like_segments_read_as_a_header_or_refused(raw: bytes) -> None:
    _read_or_refuse(raw)


@FUZZ
@given(
    garbage=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
    limit=st.integers(min_value=len(GOOD), max_value=400),
)
def test_a_good_block_after_any_garbage_comes_out(
    garbage: bytes, cuts: list[int], limit: int
) -> None:
    stream = garbage + frame(GOOD) + frame(GOOD)
    framer = Framer(limit)
    payloads: list[bytes] = []
    start = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        if cut <= start:
            continue
        got, dropped = framer.feed(stream[start:cut])
        payloads += got
        for event in dropped:
            assert event.size > 0
            assert event.problem in (Problem.OUTSIDE_BLOCK, Problem.TOO_LARGE)
        start = cut
        assert framer.pending <= limit
    # whatever the garbage opened or left unfinished, both good blocks come out whole
    assert payloads[-2:] == [GOOD, GOOD]
    assert all(len(p) <= limit for p in payloads)
