"""Sending HL7 v2 messages over MLLP and checking each acknowledgement.

One message at a time on one connection keeps the order per destination.  The
ACK is read to its end block however it is chunked, and must echo the control
id (MSA-2).  A refused, dropped or silent connection is transient (PACS-651)
and retried with backoff on a new connection; AE/AR (CE/CR) is the receiver's
answer (PACS-653) and is not.  A message resent after a lost ACK carries the
same control id, so a receiver that de-duplicates (pacsync does) keeps it once.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from pacsync.connectors.hl7.mllp import Framer, frame
from pacsync.connectors.hl7.msh import HeaderError, read_header
from pacsync.errors import (
    MllpPeerUnavailable,
    MllpProtocolError,
    NegativeAcknowledgement,
    PacsyncError,
)
from pacsync.jobs.retry import RetryPolicy

MAX_ACK = 1 << 20


@dataclass(frozen=True, slots=True)
class Ack:
    """What the receiver answered."""

    code: str  # MSA-1
    control_id: str  # MSA-2
    text: str  # MSA-3 or ERR-8
    raw: bytes
    seconds: float

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def read_ack(payload: bytes, encoding: str = "utf-8") -> Ack:
    """MSA (and ERR's text) of an acknowledgement."""
    text = payload.decode(encoding, errors="replace").replace("\n", "\r")
    if not text.startswith("MSH") or len(text) < 8:
        raise MllpProtocolError("the answer is not an HL7 message (no MSH)")
    sep = text[3]
    segments = [s for s in text.split("\r") if s]
    msa = next((s.split(sep) for s in segments if s.startswith("MSA")), None)
    if msa is None or len(msa) < 2:
        raise MllpProtocolError("the answer has no MSA segment: it is not an ACK")
    note = msa[3] if len(msa) > 3 else ""
    err = next((s.split(sep) for s in segments if s.startswith("ERR")), None)
    if err is not None and len(err) > 8 and err[8]:
        note = err[8]
    return Ack(msa[1], msa[2] if len(msa) > 2 else "", note, payload, 0.0)


class MllpSender:
    """A connection to one MLLP receiver, reopened as needed."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = 30.0,
        tls: ssl.SSLContext | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.tls = tls
        self.retry = retry or RetryPolicy(attempts=5, base_delay=0.5, max_delay=30.0)
        self.sleep = sleep
        self._sock: socket.socket | None = None
        self._framer = Framer(MAX_ACK)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, payload: bytes) -> Ack:
        """Send one message and wait for its ACK, retrying transient failures;
        NegativeAcknowledgement when the receiver refuses it."""
        try:
            header = read_header(payload)
        except HeaderError as error:
            raise MllpProtocolError(
                f"not sent: {error.reason}", hint="Each message must start with an MSH segment."
            ) from None
        attempt = 1
        while True:
            try:
                ack = self._exchange(payload, header.encoding)
                break
            except MllpPeerUnavailable:
                self.close()
                if attempt >= self.retry.attempts:
                    raise
                self.sleep(self.retry.delay(attempt))
                attempt += 1
        if ack.control_id != header.control_id:
            raise MllpProtocolError(
                f"{self.where} acknowledged {ack.control_id!r}, not {header.control_id!r}"
            )
        if not ack.accepted:
            reason = ack.text or "no reason given"
            raise NegativeAcknowledgement(
                f"{self.where} answered {ack.code} to {header.control_id}: {reason}"
            )
        return ack

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._framer = Framer(MAX_ACK)

    def __enter__(self) -> MllpSender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except (OSError, ssl.SSLError) as exc:
            raise MllpPeerUnavailable(f"cannot connect to {self.where}: {exc}") from exc
        self._sock = sock
        return sock

    def _exchange(self, payload: bytes, encoding: str) -> Ack:
        sock = self._connect()
        started = time.perf_counter()
        try:
            sock.sendall(frame(payload))
            while True:
                data = sock.recv(65536)
                if not data:
                    raise MllpPeerUnavailable(f"{self.where} closed the connection before its ACK")
                acks, _ = self._framer.feed(data)
                if acks:
                    ack = read_ack(acks[0], encoding)
                    return Ack(ack.code, ack.control_id, ack.text, ack.raw,
                               time.perf_counter() - started)  # fmt: skip
        except TimeoutError as exc:
            raise MllpPeerUnavailable(
                f"{self.where} sent no ACK within {self.timeout_s:.0f} s"
            ) from exc
        except PacsyncError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise MllpPeerUnavailable(f"{self.where}: {exc}") from exc


def split_messages(text: bytes) -> list[bytes]:
    """Messages of a file: each starts at a line beginning with MSH; segments end
    with CR whatever the file used (CR, LF or CRLF); MLLP blocks are unwrapped."""
    text = text.replace(b"\x0b", b"").replace(b"\x1c", b"")
    lines = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    messages: list[list[bytes]] = []
    for line in lines:
        if not line.strip():
            continue
        if line.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(line)
    return [b"\r".join(segments) + b"\r" for segments in messages]


__all__ = ["Ack", "MllpSender", "read_ack", "split_messages"]
