"""A DICOM node configured with TLS against a real TLS peer: DCMTK ``storescp +tls``
(built with OpenSSL), requiring a client certificate.  The certificates (a CA, the
peer's for 127.0.0.1 and pacsync's) are made at test time with ``cryptography``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import availability
from imaging_data import realistic_ct
from orthanc import LOOPBACK, free_port, wait_port
from pacsync.connectors.dicom import scu, storage
from pacsync.connectors.dicom.status import Category
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConnectionTimeout
from tls_certificates import Certificates, make_certificates

pytestmark = pytest.mark.integration

PEER_AE = "TLSSCP"


@dataclass
class TlsPeer:
    port: int
    received: Path
    certificates: Certificates

    def node(self, **tls: object) -> DicomNode:
        options = {"calling_ae": "PACSYNC", "retry": {"attempts": 1},
                   "timeouts": {"connect": 3, "acse": 5, "dimse": 10, "network": 10}}  # fmt: skip
        if tls:
            options["tls"] = tls
        return DicomNode.of("tls-peer", f"dicom://{PEER_AE}@{LOOPBACK}:{self.port}", options)

    def mutual(self) -> DicomNode:
        c = self.certificates
        return self.node(ca=str(c.ca), cert=str(c.pacsync.cert), key=str(c.pacsync.key))


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPeer]:
    binary = shutil.which("storescp")
    if binary is None:
        availability.unavailable("DCMTK storescp is missing (scripts/services installs it)")
    folder = tmp_path_factory.mktemp("tls")
    certificates = make_certificates(folder / "certs")
    received = folder / "received"
    received.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "-aet", PEER_AE, "+tls", str(certificates.peer.key),
         str(certificates.peer.cert), "+cf", str(certificates.ca), "--require-peer-cert",
         "-od", str(received), str(port)],
        env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port, process, "storescp +tls")
        yield TlsPeer(port, received, certificates)
    finally:
        process.terminate()
        process.wait(10)


def test_echo_over_mutual_tls(peer: TlsPeer) -> None:
    assert scu.echo(peer.mutual()) < 1


def test_store_over_mutual_tls(peer: TlsPeer, tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    realistic_ct(path, patient_id="TLS1", patient_name="DOE^TLS", study_uid="2.25.8801",
                 series_uid="2.25.8801.1", sop_uid="2.25.8801.1.1", instance_number=1,
                 rows=32, columns=32)  # fmt: skip
    (result,) = storage.store(peer.mutual(), [path])
    assert result.category is Category.SUCCESS
    assert [p.name for p in peer.received.iterdir() if "2.25.8801.1.1" in p.name]


def test_a_peer_signed_by_another_ca_is_refused(peer: TlsPeer) -> None:
    c = peer.certificates
    node = peer.node(ca=str(c.other_ca), cert=str(c.pacsync.cert), key=str(c.pacsync.key))
    with pytest.raises(ConnectionTimeout):
        scu.echo(node)


def test_without_a_client_certificate_the_peer_refuses(peer: TlsPeer) -> None:
    with pytest.raises(ConnectionTimeout):
        scu.echo(peer.node(ca=str(peer.certificates.ca)))


def test_a_plain_association_to_the_tls_port_fails(peer: TlsPeer) -> None:
    with pytest.raises(ConnectionTimeout):
        scu.echo(peer.node())
