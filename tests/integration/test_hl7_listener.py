"""``pacsync hl7 listen`` as a real process: python-hl7's ``mllp_send`` and ``pacsync hl7
send`` as clients, bad input of every kind while other connections are served, TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from sqlalchemy import create_engine, text

from pacsync.connectors.hl7.mllp import END, START, frame
from pacsync.connectors.hl7.sender import MllpSender
from pacsync.errors import MllpPeerUnavailable
from pacsync.jobs.retry import RetryPolicy
from tls_certificates import make_certificates

from .mllp_peers import Connection, Listener, adt, mllp_send, start_listener

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7"


def stored(listener: Listener) -> list[dict[str, Any]]:
    """Every row of the listener's message journal, oldest first."""
    home = Path(listener.env["PACSYNC_HOME"])
    databases = list(home.rglob("*.db"))
    assert len(databases) == 1, databases
    engine = create_engine(f"sqlite:///{databases[0]}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM hl7_messages ORDER BY id"))
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def strictly_valid(ack: bytes, encoding: str = "utf-8") -> None:
    """hl7apy, as an independent reader, finds the ACK valid under strict validation."""
    parsed = parse_message(
        ack.decode(encoding), validation_level=VALIDATION_LEVEL.STRICT, find_groups=False
    )
    assert parsed.validate()


@pytest.fixture
def listener(pacsync: Any) -> Iterator[Listener]:
    running = start_listener(
        pacsync, {"PACSYNC_HL7_MAX_MESSAGE_KB": "4", "PACSYNC_HL7_IDLE_TIMEOUT_S": "1.5"}
    )
    try:
        yield running
    finally:
        output = running.stop()
        assert "Traceback" not in output, output


# -- real clients -----------------------------------------------------------------------------


def test_mllp_send_loose_file_of_fixtures_with_lf_segment_ends(
    listener: Listener, pacsync: Any, tmp_path: Path
) -> None:
    names = ["adt_a01", "adt_a31", "adt_a04", "siu_s12", "dft_p03"]
    raws = [(FIXTURES / f"{n}.hl7").read_bytes() for n in names]
    assert all(b"\n" in raw for raw in raws)
    blob = tmp_path / "feed.hl7"
    blob.write_bytes(b"\n".join(raws))
    acks = mllp_send(listener.port, blob, loose=True)
    control_ids = [raw.split(b"\n")[0].split(b"|")[9].decode() for raw in raws]
    assert [a.control_id for a in acks] == control_ids
    assert all(a.code in ("AA", "CA") for a in acks), acks
    assert acks[0].code == "CA"  # adt_a01 asks for enhanced mode (MSH-15 AL)
    for number, answer in enumerate(acks):  # adt_a31's ACK is in its 8859/1
        strictly_valid(answer.raw, "iso8859-1" if number == 1 else "utf-8")
    rows = stored(listener)
    assert [r["control_id"] for r in rows] == control_ids
    assert {r["state"] for r in rows} == {"received"}
    by_id = {r["control_id"]: r for r in rows}
    latin = by_id[control_ids[1]]
    assert latin["encoding"] == "iso8859-1"
    assert "Müller".encode("latin-1") in latin["payload"]  # kept as received
    log = pacsync("hl7", "messages", "--type", "ADT")
    assert log.returncode == 0, log.stderr
    assert control_ids[0] in log.stdout
    assert control_ids[1] in log.stdout
    assert control_ids[3] not in log.stdout  # SIU
    shown = pacsync("hl7", "show", str(latin["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "Müller^Zoë" in shown.stdout


def test_mllp_send_file_of_framed_messages_and_duplicates_kept_once(
    listener: Listener, pacsync: Any, tmp_path: Path
) -> None:
    blob = tmp_path / "framed.mllp"
    blob.write_bytes(b"".join(frame(adt(f"F{n}")) for n in (1, 2, 3, 2, 1)))
    acks = mllp_send(listener.port, blob)
    assert [(a.code, a.control_id) for a in acks] == [
        ("AA", "F1"),
        ("AA", "F2"),
        ("AA", "F3"),
        ("AA", "F2"),
        ("AA", "F1"),
    ]
    assert [r["control_id"] for r in stored(listener)] == ["F1", "F2", "F3"]
    log = pacsync("hl7", "messages", "--control-id", "F2")
    assert log.stdout.count("F2") == 1


def test_pacsync_hl7_send_a_file_to_the_listener(
    listener: Listener, pacsync: Any, tmp_path: Path
) -> None:
    blob = tmp_path / "two.hl7"
    blob.write_bytes(adt("S1").replace(b"\r", b"\r\n") + adt("S2").replace(b"\r", b"\n"))
    sent = pacsync("hl7", "send", f"127.0.0.1:{listener.port}", blob)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "AA S1" in sent.stdout
    assert "AA S2" in sent.stdout
    assert "2 acknowledged, 0 refused" in sent.stdout
    assert [r["payload"] for r in stored(listener)] == [adt("S1"), adt("S2")]


def test_pacsync_hl7_send_reports_a_refusal(
    listener: Listener, pacsync: Any, tmp_path: Path
) -> None:
    blob = tmp_path / "orm.hl7"
    blob.write_bytes(adt("R1").replace(b"ADT^A08^ADT_A01", b"ORM^O01") + adt("R2"))
    sent = pacsync("hl7", "send", "--keep-going", f"127.0.0.1:{listener.port}", blob)
    assert sent.returncode == 1
    assert "answered AR to R1: message type ORM is not accepted" in sent.stdout
    assert "1 acknowledged, 1 refused" in sent.stdout


# -- bad input --------------------------------------------------------------------------------


def test_bad_input_is_answered_and_every_connection_goes_on(
    listener: Listener, pacsync: Any, tmp_path: Path
) -> None:
    port = listener.port
    with Connection(port) as good, Connection(port) as bad:
        assert good.exchange(adt("G1")).code == "AA"

        bad.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not HL7, not framed: no answer
        assert good.exchange(adt("G2")).code == "AA"
        assert (bad.exchange(adt("B1")).code, bad.pending) == ("AA", [])

        missing = bad.exchange(b"PID|1||42\rPV1|1|I\r")  # no MSH
        assert (missing.code, missing.control_id) == ("AR", "UNKNOWN")
        assert "does not start with MSH" in missing.text

        bad.write(START + b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|2026||ADT^A08|CUT|P|2.5.1\rPID")
        after_broken = bad.exchange(adt("B2"))  # a block without end, then a good one
        assert (after_broken.code, after_broken.control_id) == ("AA", "B2")

        big = bad.exchange(adt("BIG", body=b"NTE|1||" + b"x" * 8000 + b"\r"))
        assert (big.code, big.control_id) == ("AR", "BIG")
        assert "larger than the maximum" in big.text
        assert bad.exchange(adt("B3")).code == "AA"

        wrong = adt("ENC", extra="||||||UNICODE UTF-8", body=b"NTE|1||M\xfcller\r")
        encoding = bad.exchange(wrong)
        assert (encoding.code, encoding.control_id) == ("AE", "ENC")
        assert "not valid utf-8" in encoding.text

        no_id = bad.exchange(adt(""))
        assert (no_id.code, no_id.control_id) == ("AR", "UNKNOWN")
        assert "MSH-10" in no_id.text

        assert good.exchange(adt("G3")).code == "AA"
        for answer in (missing, big, encoding, no_id):  # each refusal a valid ACK
            strictly_valid(answer.raw)

    truncated = Connection(port)  # closed in the middle of a block
    truncated.write(START + adt("TRUNC")[:40])
    truncated.close()
    with Connection(port) as after:
        assert after.exchange(adt("G4")).code == "AA"

    rows = stored(listener)
    accepted = [r["control_id"] for r in rows if r["accepted"]]
    assert accepted == ["G1", "G2", "B1", "B2", "B3", "G3", "G4"]
    rejected = {r["control_id"]: r for r in rows if not r["accepted"]}
    assert set(rejected) == {"", "BIG", "ENC"}
    assert rejected["ENC"]["ack_code"] == "AE"
    assert rejected["BIG"]["size"] <= 4096  # only the head of an oversize message is logged
    assert "TRUNC" not in str([r["payload"] for r in rows])
    log = pacsync("hl7", "messages", "--state", "rejected")
    assert "larger than the maximum" in log.stdout
    assert "not valid utf-8" in log.stdout


def test_msh_15_ne_is_kept_and_not_answered(listener: Listener) -> None:
    oru = (FIXTURES / "oru_r01.hl7").read_bytes().replace(b"\n", b"\r")
    assert b"|NE|AL|" in oru
    with Connection(listener.port) as conn:
        conn.write(frame(oru))
        assert conn.exchange(adt("AFTER-NE")).control_id == "AFTER-NE"  # the next answer
    assert [r["kind"] for r in stored(listener)] == ["ORU^R01", "ADT^A08"]
    assert stored(listener)[0]["ack_code"] == ""


def test_mllp_send_of_a_wrongly_encoded_file_gets_ae(listener: Listener, tmp_path: Path) -> None:
    blob = tmp_path / "latin1-declared-utf8.hl7"
    blob.write_bytes(frame(adt("ENC2", extra="||||||UNICODE UTF-8", body=b"PID|2||M\xfcller\r")))
    (answer,) = mllp_send(listener.port, blob)
    assert (answer.code, answer.control_id) == ("AE", "ENC2")


def test_a_silent_connection_is_closed_after_the_idle_timeout(listener: Listener) -> None:
    silent = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
    started = time.monotonic()
    try:
        with Connection(listener.port) as other:  # served while the silent one waits
            assert other.exchange(adt("W1")).code == "AA"
        assert silent.recv(10) == b""  # closed by the listener
    finally:
        silent.close()
    assert 1.2 < time.monotonic() - started < 8


def test_many_concurrent_connections_are_all_answered_and_kept(listener: Listener) -> None:
    senders, each = 40, 25
    failures: list[BaseException] = []

    def send(number: int) -> None:
        try:
            with MllpSender("127.0.0.1", listener.port, timeout_s=30) as sender:
                for n in range(each):
                    sender.send(adt(f"P{number}-{n}"))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    # a stalled connection holding a half block does not hold the others up
    with Connection(listener.port) as stalled:
        stalled.write(START + adt("STALL")[:30])
        for thread in threads:
            thread.join(timeout=120)
    assert failures == []
    rows = stored(listener)
    assert len(rows) == senders * each
    assert {r["control_id"] for r in rows} == {
        f"P{s}-{n}" for s in range(senders) for n in range(each)
    }


# -- TLS --------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "mllp.crt", folder / "mllp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_listener_with_a_trusting_sender(pacsync: Any, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    running = start_listener(
        pacsync, {"PACSYNC_HL7_TLS_CERT": str(cert), "PACSYNC_HL7_TLS_KEY": str(key)}
    )
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        with MllpSender("127.0.0.1", running.port, tls=trusting) as sender:
            answers = [sender.send(adt(f"T{n}")) for n in range(3)]
        assert [(a.code, a.control_id) for a in answers] == [(
            "AA", f"T{n}") for n in range(3)]  # fmt: skip

        untrusting = ssl.create_default_context()  # the system's CAs only
        no_retry = RetryPolicy(attempts=1)
        with (
            MllpSender("127.0.0.1", running.port, tls=untrusting, retry=no_retry) as sender,
            pytest.raises(MllpPeerUnavailable, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            sender.send(adt("T9"))

        with (
            MllpSender("127.0.0.1", running.port, retry=no_retry, timeout_s=5) as plain,
            pytest.raises(MllpPeerUnavailable),
        ):
            plain.send(adt("T10"))  # plain MLLP to a TLS port gets no ACK

        assert [r["control_id"] for r in stored(running)] == ["T0", "T1", "T2"]
    finally:
        output = running.stop()
    assert running.banner.strip().endswith(f"127.0.0.1:{running.port} (TLS)")
    assert "Traceback" not in output


def test_mutual_tls_takes_only_senders_with_a_certificate_of_the_site_ca(
    pacsync: Any, tmp_path: Path
) -> None:
    c = make_certificates(tmp_path / "certs")
    running = start_listener(
        pacsync,
        {"PACSYNC_HL7_TLS_CERT": str(c.peer.cert), "PACSYNC_HL7_TLS_KEY": str(c.peer.key),
         "PACSYNC_HL7_TLS_CA": str(c.ca)},
    )  # fmt: skip
    try:
        signed = ssl.create_default_context(cafile=str(c.ca))
        signed.load_cert_chain(c.pacsync.cert, c.pacsync.key)
        with MllpSender("127.0.0.1", running.port, tls=signed) as sender:
            assert sender.send(adt("M1")).code == "AA"
        anonymous = ssl.create_default_context(cafile=str(c.ca))  # trusts it, shows nothing
        with (
            MllpSender("127.0.0.1", running.port, tls=anonymous, retry=RetryPolicy(attempts=1),
                       timeout_s=5) as sender,
            pytest.raises(MllpPeerUnavailable),
        ):  # fmt: skip
            sender.send(adt("M2"))
        assert [r["control_id"] for r in stored(running)] == ["M1"]
    finally:
        output = running.stop()
    assert "Traceback" not in output


def test_a_standalone_listener_serves_its_counters_for_prometheus(pacsync: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        metrics_port = sock.getsockname()[1]
    running = start_listener(pacsync, None, "--metrics-port", str(metrics_port))
    try:
        refused = adt("M3").replace(b"ADT^A08^ADT_A01", b"ORM^O01")
        with Connection(running.port) as conn:
            conn.write(frame(adt("M1")) + frame(adt("M2")) + frame(refused))
            codes = [ack.code for ack in conn.acks(3)]
        assert codes == ["AA", "AA", "AR"]
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            scraped = r.read().decode()
    finally:
        running.stop()
    feed = 'feed="mllp"'
    assert f'pacsync_hl7_messages_total{{ack="AA",{feed}}} 2.0' in scraped, scraped
    assert f'pacsync_hl7_messages_total{{ack="AR",{feed}}} 1.0' in scraped
    assert f"pacsync_hl7_ack_seconds_count{{{feed}}} 3.0" in scraped


def test_block_end_bytes_alone_are_harmless(listener: Listener) -> None:
    with Connection(listener.port) as conn:
        conn.write(END + END + b"\r\n")
        assert conn.exchange(adt("E1")).code == "AA"


def test_a_default_encoding_that_is_no_character_set_stops_the_listener_at_start(
    pacsync: Any,
) -> None:
    done = pacsync("hl7", "listen", "--port", "0", env={"PACSYNC_HL7_ENCODING": "latin-9x"})
    assert done.returncode != 0
    assert "PACS-101" in done.stdout + done.stderr
    assert "PACSYNC_HL7_ENCODING 'latin-9x' is not a character set" in done.stdout + done.stderr
