"""The HL7 v2 message fixtures under tests/fixtures/hl7, decoded as their MSH-18 says."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hl7"


def message_text(name: str) -> str:
    """The text of ``<name>.hl7``: ISO-8859-1 when MSH-18 says 8859/1, else UTF-8."""
    raw = (FIXTURES / f"{name}.hl7").read_bytes()
    header = raw.split(b"\n", 1)[0]
    return raw.decode("iso8859-1" if header.endswith(b"|8859/1") else "utf-8")


def all_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.hl7"))
