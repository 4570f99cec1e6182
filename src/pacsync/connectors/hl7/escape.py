"""HL7 v2 escape sequences (v2.5.1 chapter 2.7) turned back into the text they stand for.

A value may hide its message's delimiters and more behind the escape character
(``\\`` by default):

- ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` — the field, component, subcomponent and repetition
  separators and the escape character itself;
- ``\\Xhh…\\`` — bytes in hexadecimal, read in the message's character set (MSH-18);
- ``\\.br\\`` and ``\\.sp n\\`` — line breaks (``\\.sk n\\`` skips n spaces); the other
  formatting commands (``\\.fi\\ \\.nf\\ \\.in\\ \\.ti\\ \\.ce\\``) and highlighting
  (``\\H\\ \\N\\``) carry no text and are dropped;
- ``\\Cxxyy\\``, ``\\Mxxyyzz\\`` (character set switches) and ``\\Z…\\`` (locally defined)
  cannot be rendered as text and are dropped.

A value with an escape character that is never closed keeps it as it is: senders that
do not escape a lone backslash are common and the text is still readable.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# HL7 table 0211 character sets that can appear in MSH-18, as Python codecs
_CHARSETS = {"ASCII": "ascii", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "ISO IR192": "utf-8"}
_ISO_8859 = re.compile(r"^(?:8859/|ISO IR)(\d{1,3})$")
_ISO_IR_8859 = {"100": 1, "101": 2, "109": 3, "110": 4, "144": 5, "127": 6, "126": 7}
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_COUNTED = re.compile(r"^\.(sp|sk)\s*(\d*)$")


class EscapeError(ValueError):
    """A hexadecimal escape sequence that does not decode."""


def codec_for(charset: str) -> str:
    """The Python codec of an MSH-18 character set; empty when MSH-18 is empty (the bytes
    are then read as UTF-8 if they are UTF-8, else as ISO-8859-1) and ISO-8859-1 when it
    names a set Python does not know."""
    name = charset.strip().upper()
    if not name:
        return ""
    if name in _CHARSETS:
        return _CHARSETS[name]
    match = _ISO_8859.match(name)
    if match:
        number = match.group(1)
        part = _ISO_IR_8859.get(number, int(number)) if name.startswith("ISO IR") else number
        try:
            return codecs.lookup(f"iso8859-{part}").name
        except LookupError:
            return "iso8859-1"
    return "iso8859-1"


@dataclass(frozen=True, slots=True)
class Delimiters:
    """A message's delimiters, from MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    codec: str = ""  # how \\X..\\ bytes are read; empty: UTF-8, else ISO-8859-1

    def unescape(self, value: str) -> str:
        """``value`` with its escape sequences replaced by what they stand for."""
        esc = self.escape
        if not esc or esc not in value:
            return value
        out: list[str] = []
        position = 0
        while True:
            start = value.find(esc, position)
            if start < 0:
                out.append(value[position:])
                break
            end = value.find(esc, start + 1)
            if end < 0:  # an escape character never closed: keep it as text
                out.append(value[position:])
                break
            out.append(value[position:start])
            out.append(self._sequence(value[start + 1 : end]))
            position = end + 1
        return "".join(out)

    def _sequence(self, body: str) -> str:
        simple = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            ".br": "\n",
        }
        if body in simple:
            return simple[body]
        if body.startswith("X"):
            digits = body[1:]
            if not _HEX.match(digits):
                raise EscapeError(f"escape sequence \\{body}\\ is not an even count of hex digits")
            data = bytes.fromhex(digits)
            try:
                if not self.codec:
                    try:
                        return data.decode("utf-8")
                    except UnicodeDecodeError:
                        return data.decode("iso8859-1")
                return data.decode(self.codec)
            except UnicodeDecodeError as exc:
                raise EscapeError(
                    f"escape sequence \\{body}\\ is not text in {self.codec}"
                ) from exc
        counted = _COUNTED.match(body)
        if counted:
            count = int(counted.group(2) or "1")
            return ("\n" if counted.group(1) == "sp" else " ") * min(count, 1000)
        return ""  # highlighting, other formatting, character set switches, local escapes
