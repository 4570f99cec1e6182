"""Node options from the CLI and instances received by C-GET written to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from imaging_data import realistic_ct
from pacsync.bootstrap.dicom_nodes import folder_writer
from pacsync.cli.dicom import _options
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import InvalidDicom, InvalidRequest


def test_cli_options_nest_and_keep_their_types() -> None:
    options = _options(
        [
            "timeouts.connect=5",
            "max_pdu=0",
            "secondary=dicom://B@h2:104",
            "transfer_syntaxes=[explicit-little]",
            "tls.verify_hostname=false",
        ]
    )
    assert options == {
        "timeouts": {"connect": 5},
        "max_pdu": 0,
        "secondary": "dicom://B@h2:104",
        "transfer_syntaxes": ["explicit-little"],
        "tls": {"verify_hostname": False},
    }
    node = DicomNode.of("pacs", "dicom://PACS@h1:11112", options)
    assert node.secondary is not None
    assert node.secondary.host == "h2"
    assert node.timeouts.connect == 5
    with pytest.raises(InvalidRequest, match="invalid option 'max_pdu'"):
        _options(["max_pdu"])


def test_received_instances_are_written_as_received(tmp_path: Path) -> None:
    source = tmp_path / "one.dcm"
    realistic_ct(
        source,
        patient_id="P",
        patient_name="A^B",
        study_uid="2.25.1",
        series_uid="2.25.1.1",
        sop_uid="2.25.1.1.1",
        instance_number=1,
        rows=16,
        columns=16,
    )
    write = folder_writer(tmp_path / "in")
    write(source.read_bytes())
    written = tmp_path / "in" / "2.25.1" / "2.25.1.1" / "2.25.1.1.1.dcm"
    assert written.read_bytes() == source.read_bytes()
    assert [p.name for p in written.parent.iterdir()] == ["2.25.1.1.1.dcm"]
    with pytest.raises(InvalidDicom):
        write(b"not dicom at all")
