"""The pacsync SCP over TLS with DCMTK's ``echoscu`` and ``storescu +tls`` (built with
OpenSSL) as its peers: the SCP shows its certificate and asks each peer for one
signed by the site's CA.  A plain-TCP client, a peer without a certificate and a
silent connection are turned away without holding the port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import availability
from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.bootstrap import dicom_scp
from pacsync.config import Settings
from pacsync.connectors.dicom.scp import Scp
from pacsync.errors import ConfigError
from tls_certificates import Certificates, make_certificates

pytestmark = pytest.mark.integration

AE = "PACSYNC"
MODALITY = "MODALITY"


@dataclass
class TlsScp:
    scp: Scp
    certificates: Certificates

    def dcmtk(
        self, tool: str, *args: str | Path, tls: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``tool`` (echoscu, storescu) against the SCP, over mutual TLS unless not ``tls``."""
        c = self.certificates
        secure = ["+tls", str(c.pacsync.key), str(c.pacsync.cert), "+cf", str(c.ca)] if tls else []
        command = [tool, *secure, "-aet", MODALITY, "-aec", AE, "-to", "10", "-ta", "10",
                   "127.0.0.1", str(self.scp.port), *map(str, args)]  # fmt: skip
        return subprocess.run(
            command, env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsScp]:
    if shutil.which("echoscu") is None or shutil.which("storescu") is None:
        availability.unavailable("DCMTK echoscu/storescu missing (scripts/services installs them)")
    folder = tmp_path_factory.mktemp("scp-tls")
    certificates = make_certificates(folder / "certs")
    settings = Settings(
        home=folder / "home", database_url=None, dicom_tls_cert=certificates.peer.cert,
        dicom_tls_key=certificates.peer.key, dicom_tls_ca=certificates.ca,
    )  # fmt: skip
    store = bootstrap.store(settings)
    store.connections.put("modality", "dicom", f"dicom://{MODALITY}@127.0.0.1:104")
    scp = dicom_scp.scp(settings, store, port=0)
    scp.start()
    try:
        yield TlsScp(scp, certificates)
    finally:
        scp.stop()
        store.engine.dispose()


def test_echo_over_mutual_tls(secure: TlsScp) -> None:
    done = secure.dcmtk("echoscu")
    assert done.returncode == 0, done.stdout + done.stderr


def test_store_over_mutual_tls_lands_in_the_inbox(secure: TlsScp, tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    realistic_ct(path, patient_id="TLS2", patient_name="DOE^SECURE", study_uid="2.25.8802",
                 series_uid="2.25.8802.1", sop_uid="2.25.8802.1.1", instance_number=1,
                 rows=32, columns=32)  # fmt: skip
    done = secure.dcmtk("storescu", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(secure.scp.inbox.root.glob("*/*/2.25.8802.1.1.dcm"))


def test_plain_tcp_and_a_peer_without_a_certificate_are_turned_away(secure: TlsScp) -> None:
    plain = secure.dcmtk("echoscu", tls=False)
    assert plain.returncode != 0
    c = secure.certificates
    anonymous = subprocess.run(
        ["echoscu", "+tla", "+cf", str(c.ca), "-aet", MODALITY, "-aec", AE, "-to", "10",
         "127.0.0.1", str(secure.scp.port)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert anonymous.returncode != 0
    done = secure.dcmtk("echoscu")  # the port goes on serving
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_silent_connection_does_not_hold_the_port(secure: TlsScp) -> None:
    with socket.create_connection(("127.0.0.1", secure.scp.port)):  # connects, says nothing
        began = time.monotonic()
        done = secure.dcmtk("echoscu")
        assert done.returncode == 0, done.stdout + done.stderr
        assert time.monotonic() - began < 5  # not after the silent one's handshake timeout


def test_a_ca_without_a_certificate_is_refused_at_start(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=None, dicom_tls_ca=tmp_path / "ca.pem")
    store = bootstrap.store(settings)
    try:
        with pytest.raises(ConfigError, match="PACSYNC_DICOM_TLS_CA is set but no certificate"):
            dicom_scp.scp(settings, store, port=0)
    finally:
        store.engine.dispose()
