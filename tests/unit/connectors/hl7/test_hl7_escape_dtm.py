"""HL7 v2 escape sequences and DTM/TM values."""

from __future__ import annotations

import datetime as dt

import pytest

from pacsync.connectors.hl7.dtm import header_offset, parse_dtm, parse_tm
from pacsync.connectors.hl7.escape import Delimiters, EscapeError, codec_for
from pacsync.domain.clinical import Precision

DEFAULT = Delimiters()


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", "a|b^c&d~e\\f"),
        ("line 1\\.br\\line 2", "line 1\nline 2"),
        ("a\\.sp2\\b", "a\n\nb"),
        ("a\\.sk3\\b", "a   b"),
        ("\\H\\bold\\N\\ text", "bold text"),
        ("\\.fi\\\\.nf\\\\.in+4\\x\\.ce\\", "x"),
        ("Caf\\XC3A9\\", "Café"),
        ("Caf\\XE9\\", "Café"),  # not UTF-8: read as ISO-8859-1
        ("\\C2842\\kanji\\M2442\\", "kanji"),  # character set switches carry no text
        ("\\Zlocal\\x", "x"),
        ("C:\\path", "C:\\path"),  # a lone escape character is kept
        ("no escapes", "no escapes"),
    ],
)
def test_unescape(raw: str, text: str) -> None:
    assert DEFAULT.unescape(raw) == text


def test_unescape_uses_the_message_delimiters() -> None:
    custom = Delimiters(field="#", component="!", repetition="*", escape="$", subcomponent="@")

    assert custom.unescape("a$F$b$S$c$T$d$R$e$E$f") == "a#b!c@d*e$f"
    assert custom.unescape("a\\F\\b") == "a\\F\\b"


def test_hex_in_a_named_character_set() -> None:
    latin9 = Delimiters(codec=codec_for("8859/15"))

    assert latin9.unescape("\\XA4\\") == "€"
    with pytest.raises(EscapeError):
        Delimiters(codec="ascii").unescape("\\XE9\\")
    with pytest.raises(EscapeError):
        DEFAULT.unescape("\\XABC\\")


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("8859/1", "iso8859-1"),
        ("ISO IR100", "iso8859-1"),
        ("UNICODE UTF-8", "utf-8"),
        ("ASCII", "ascii"),
        ("", ""),
        ("EBCDIC", "iso8859-1"),
    ],
)
def test_codec_for_msh_18(charset: str, codec: str) -> None:
    assert codec_for(charset) == codec


@pytest.mark.parametrize(
    ("text", "precision", "value"),
    [
        ("2026", Precision.YEAR, dt.datetime(2026, 1, 1)),
        ("202603", Precision.MONTH, dt.datetime(2026, 3, 1)),
        ("20260315", Precision.DAY, dt.datetime(2026, 3, 15)),
        ("2026031514", Precision.HOUR, dt.datetime(2026, 3, 15, 14)),
        ("202603151430", Precision.MINUTE, dt.datetime(2026, 3, 15, 14, 30)),
        ("20260315143012", Precision.SECOND, dt.datetime(2026, 3, 15, 14, 30, 12)),
        ("20260315143012.5", Precision.SECOND, dt.datetime(2026, 3, 15, 14, 30, 12, 500000)),
        ("20260315143012.1234", Precision.SECOND, dt.datetime(2026, 3, 15, 14, 30, 12, 123400)),
    ],
)
def test_dtm_precision(text: str, precision: Precision, value: dt.datetime) -> None:
    stamp = parse_dtm(text)

    assert stamp.precision is precision
    assert stamp.value == value
    assert stamp.has_time is (precision >= Precision.HOUR)


def test_dtm_offsets() -> None:
    east = parse_dtm("202603151430+0530")
    west = parse_dtm("20260315-0330")
    inherited = parse_dtm("202603151430", dt.timezone(dt.timedelta(hours=1)))
    own_wins = parse_dtm("202603151430-0500", dt.timezone(dt.timedelta(hours=1)))

    assert east.value.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert west.precision is Precision.DAY
    assert west.value.utcoffset() == -dt.timedelta(hours=3, minutes=30)
    assert inherited.value.utcoffset() == dt.timedelta(hours=1)
    assert own_wins.value.utcoffset() == dt.timedelta(hours=-5)
    assert header_offset("20260315143012+0100") == dt.timezone(dt.timedelta(hours=1))
    assert header_offset("20260315143012") is None
    assert header_offset("garbage") is None


@pytest.mark.parametrize(
    "text", ["", "26", "2026031", "20261301", "20260230", "2026-03-15", "20260315+0", "202603+1560"]
)
def test_dtm_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY"):
        parse_dtm(text)


def test_tm() -> None:
    assert parse_tm("14") == dt.time(14)
    assert parse_tm("1430") == dt.time(14, 30)
    assert parse_tm("143012.25") == dt.time(14, 30, 12, 250000)
    assert parse_tm("1430+0100").utcoffset() == dt.timedelta(hours=1)
    with pytest.raises(ValueError, match="HH"):
        parse_tm("2561")
    with pytest.raises(ValueError, match="HH"):
        parse_tm("14:30")
