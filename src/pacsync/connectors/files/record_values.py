"""What the file readers share: decoding checks, nulls and JSON columns."""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

_UNDECODED = re.compile("[\udc80-\udcff]")


def text_encoding(name: str) -> str:
    """The codec to decode with: UTF-8 files may start with a byte order mark."""
    return "utf-8-sig" if codecs.lookup(name).name == "utf-8" else name


def undecodable(text: str, encoding: str) -> str | None:
    """Why ``text`` (decoded with ``surrogateescape``) is not valid, or None."""
    found = _UNDECODED.search(text)
    if found is None:
        return None
    byte = ord(found.group()) - 0xDC00
    return f"byte 0x{byte:02x} is not valid {encoding}"


def nulled(value: Any, nulls: frozenset[str]) -> Any:
    return None if isinstance(value, str) and value in nulls else value


def lookup(record: dict[str, Any], column: str) -> Any:
    """A column of a JSON object: a key, or a dotted path into nested objects."""
    if column in record:
        value = record[column]
    else:
        value = record
        for part in column.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value
