"""The SCU's pieces without a network: retrieve identifiers, sub-operation counts,
A-ASSOCIATE-RJ texts, node options."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from pacsync.connectors.dicom.association import rejection_text, tls_context
from pacsync.connectors.dicom.retrieve import (
    SubOperations,
    final_counts,
    retrieve_identifier,
    sub_operations,
)
from pacsync.connectors.dicom.status import Status
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConfigError, InvalidRequest


def response(status: int, **counts: int) -> Dataset:
    ds = Dataset()
    ds.Status = status
    for name, value in counts.items():
        setattr(ds, f"NumberOf{name.capitalize()}Suboperations", value)
    return ds


def test_pending_counts_are_read() -> None:
    rsp = response(Status.PENDING, completed=2, remaining=5, failed=1, warning=0)
    assert sub_operations(rsp) == SubOperations(completed=2, remaining=5, failed=1)
    assert sub_operations(rsp).total == 8


def test_a_final_response_without_counts_completes_the_remaining() -> None:
    last = SubOperations(completed=2, remaining=1)
    assert final_counts(response(Status.SUCCESS), Status.SUCCESS, last) == SubOperations(3, 0)
    with_counts = response(Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES, completed=2, failed=1)
    assert final_counts(with_counts, Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES, last) == (
        SubOperations(completed=2, failed=1)
    )
    assert final_counts(response(Status.CANCEL), Status.CANCEL, last) == last


def test_retrieve_identifiers_pick_the_level() -> None:
    assert retrieve_identifier("1.2").QueryRetrieveLevel == "STUDY"
    series = retrieve_identifier("1.2", "1.2.3")
    assert (series.QueryRetrieveLevel, series.SeriesInstanceUID) == ("SERIES", "1.2.3")
    assert retrieve_identifier("1.2", "1.2.3", "1.2.3.4").QueryRetrieveLevel == "IMAGE"
    with pytest.raises(InvalidRequest):
        retrieve_identifier("1.2", None, "1.2.3.4")


def test_rejections_are_named() -> None:
    assert rejection_text(1, 1, 7) == (
        "rejected permanently by the service user: called AE title not recognised"
    )
    assert rejection_text(2, 3, 1) == (
        "rejected transiently by the service provider (presentation): temporary congestion"
    )
    assert "reason 0x09" in rejection_text(1, 1, 9)


def test_node_option_errors_name_the_option() -> None:
    with pytest.raises(ConfigError, match=r"connection 'pacs': max_pdu"):
        DicomNode.of("pacs", "dicom://PACS@host:104", {"max_pdu": -1})
    with pytest.raises(ConfigError, match="invalid DICOM node URL"):
        DicomNode.of("pacs", "http://host", {})
    with pytest.raises(ConfigError, match="unknown transfer syntax"):
        DicomNode.of("pacs", "dicom://PACS@host", {"transfer_syntaxes": ["jpeg3000"]})


def test_missing_tls_files_are_a_config_error(tmp_path: object) -> None:
    node = DicomNode.of("tls", "dicom://PACS@host", {"tls": {"ca": "/nonexistent/ca.pem"}})
    with pytest.raises(ConfigError, match="TLS files cannot be used"):
        tls_context(node)


def test_tls_is_at_least_1_2() -> None:
    import ssl

    node = DicomNode.of("tls", "dicom://PACS@host", {"tls": {"verify_hostname": False}})
    context = tls_context(node)
    assert context is not None
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert tls_context(DicomNode.of("plain", "dicom://PACS@host", {})) is None
