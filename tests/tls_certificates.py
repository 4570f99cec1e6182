"""Certificates for TLS tests, made at test time with ``cryptography``: a CA, a server
certificate for 127.0.0.1 and localhost, a client certificate, and a CA that signed
neither.  Importable by name from any test folder, like ``availability``."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"


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


__all__ = ["Certificates", "Pair", "make_certificates"]
