"""Search results as the DICOM JSON model (PS3.18 F.2) that QIDO-RS returns.

Where each result lives is said in a private block of pacsync's own: creator
``PACSYNC`` at (0009,0010); (0009,1001) the archive, (0009,1002) the file's path
relative to the archive root (instances)."""

from __future__ import annotations

from typing import Any

from pacsync.imaging.search import INSTANCE_KEYS, RESULT_KEYS, SERIES_KEYS, STUDY_KEYS, Level

PRIVATE_CREATOR = "PACSYNC"
_TAGS: dict[str, tuple[str, str]] = {
    **{k: (tag, vr) for k, (tag, vr, _) in (STUDY_KEYS | SERIES_KEYS | INSTANCE_KEYS).items()},
    **RESULT_KEYS,
}
_LEVEL_OF: dict[Level, str] = {"study": "STUDY", "series": "SERIES", "instance": "IMAGE"}
_NUMBERS = {"IS", "US", "UL", "SS", "SL"}


def element(vr: str, value: Any) -> dict[str, Any]:
    """One DICOM JSON element; multi-valued strings split on ``\\``."""
    if value is None or value == "":
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": str(value)}]}
    if vr in _NUMBERS:
        return {"vr": vr, "Value": [int(value)]}
    return {"vr": vr, "Value": str(value).split("\\")}


def result(row: dict[str, Any], level: Level, base_url: str) -> dict[str, Any]:
    """One QIDO-RS result: every attribute the index holds for it, its retrieve URL and
    its query/retrieve level."""
    out: dict[str, Any] = {}
    for keyword, value in row.items():
        if keyword in _TAGS and keyword != "TransferSyntaxUID":
            tag, vr = _TAGS[keyword]
            out[tag] = element(vr, value)
    out["00080052"] = element("CS", _LEVEL_OF[level])
    url = f"{base_url}/studies/{row['StudyInstanceUID']}"
    if level in ("series", "instance"):
        url += f"/series/{row['SeriesInstanceUID']}"
    if level == "instance":
        url += f"/instances/{row['SOPInstanceUID']}"
    out["00081190"] = element("UR", url)
    out["00090010"] = element("LO", PRIVATE_CREATOR)
    out["00091001"] = element("LO", row.get("archive"))
    if level == "instance":
        out["00091002"] = element("UT", row.get("path"))
    return dict(sorted(out.items()))
