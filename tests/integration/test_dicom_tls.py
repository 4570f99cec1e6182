"""A DICOM node configured with TLS against a real TLS peer: DCMTK ``storescp +tls``
(built with OpenSSL), requiring a client certificate.  The certificates (a CA, the
peer's for 127.0.0.1 and pacsync's) are made at test time with ``cryptography``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import availability
from imaging_data import realistic_ct
from orthanc import LOOPBACK, free_port, wait_port
from pacsync.connectors.dicom import scu, storage
from pacsync.connectors.dicom.status import Category
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConnectionTimeout

pytestmark = pytest.mark.integration

PEER_AE = "TLSSCP"


@dataclass(frozen=True)
class Pair:
    key: Path
    cert: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(folder: Path, name: str, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> Pair:
    pair = Pair(folder / f"{name}.key", folder / f"{name}.pem")
    pair.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))  # fmt: skip
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _certificate(
    name: str, key: rsa.RSAPrivateKey, issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *, server: bool = False,
) -> x509.Certificate:  # fmt: skip
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0] if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        names = [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


@dataclass(frozen=True)
class Certificates:
    ca: Path
    peer: Pair
    pacsync: Pair
    other_ca: Path  # a CA that signed neither


def make_certificates(folder: Path) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, other_key = _key(), _key()
    ca = _certificate("pacsync test CA", ca_key, None)
    issuer = (ca.subject, ca_key)
    peer_key, client_key = _key(), _key()
    peer = _write(folder, "peer", peer_key, _certificate(LOOPBACK, peer_key, issuer, server=True))
    client = _write(folder, "pacsync", client_key, _certificate("PACSYNC", client_key, issuer))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    other = _certificate("another CA", other_key, None)
    (folder / "other-ca.pem").write_bytes(other.public_bytes(serialization.Encoding.PEM))
    return Certificates(folder / "ca.pem", peer, client, folder / "other-ca.pem")


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
