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
_ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})  # HL7 table 0008
ERROR_WINDOW_S = 2.0  # MSH-15 ER: how long an error ACK is waited for


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
        """AA or CA; also no ACK where MSH-15 asked for none or only for errors."""
        return self.code in ("AA", "CA", "")


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
    if msa[1] not in _ACK_CODES:  # an empty one would read as "no ACK asked for"
        raise MllpProtocolError(f"the answer's MSA-1 {msa[1]!r} is not an acknowledgement code")
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
        # enhanced mode: NE asks for no commit ACK at all, ER for one only on an error
        if header.accept_ack == "NE":
            return self._unanswered(payload)
        quiet_ok = header.accept_ack == "ER"
        attempt = 1
        while True:
            try:
                ack = self._exchange(payload, header.encoding, quiet_ok=quiet_ok)
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

    def _unanswered(self, payload: bytes) -> Ack:
        """Send a message whose sender asked for no ACK (MSH-15 NE)."""
        sock = self._connect()
        try:
            sock.sendall(frame(payload))
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise MllpPeerUnavailable(f"{self.where}: {exc}") from exc
        return Ack("", read_header(payload).control_id, "no ACK asked for (MSH-15 NE)", b"", 0.0)

    def _exchange(self, payload: bytes, encoding: str, *, quiet_ok: bool = False) -> Ack:
        sock = self._connect()
        started = time.perf_counter()
        control_id = read_header(payload).control_id
        try:
            sock.sendall(frame(payload))
            sock.settimeout(min(self.timeout_s, ERROR_WINDOW_S) if quiet_ok else self.timeout_s)
            while True:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    if not quiet_ok:
                        raise
                    # a late error ACK must not be read as the next message's: new connection
                    self.close()
                    return Ack("", control_id, "no error reported (MSH-15 ER)", b"",
                               time.perf_counter() - started)  # fmt: skip
                if not data:
                    raise MllpPeerUnavailable(f"{self.where} closed the connection before its ACK")
                acks, _ = self._framer.feed(data)
                if acks:
                    ack = read_ack(acks[0], encoding)
                    return Ack(ack.code, ack.control_id, ack.text, ack.raw,
                               time.perf_counter() - started)  # fmt: skip
        except TimeoutError as exc:
            self.close()
            raise MllpPeerUnavailable(
                f"{self.where} sent no ACK within {self.timeout_s:.0f} s"
            ) from exc
        except PacsyncError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise MllpPeerUnavailable(f"{self.where}: {exc}") from exc


class MllpPeer:
    """An MLLP receiver as a :class:`pacsync.ports.MessageSender`: the ACK code."""

    def __init__(self, sender: MllpSender) -> None:
        self.sender = sender

    def send(self, payload: bytes) -> str:
        return self.sender.send(payload).code

    def close(self) -> None:
        self.sender.close()


def split_messages(text: bytes) -> list[bytes]:
    """Messages of a file: each starts at a line beginning with MSH; segments end
    with CR whatever the file used (CR, LF or CRLF); MLLP blocks are unwrapped."""
    text = text.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark (Windows exports)
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


__all__ = ["Ack", "MllpPeer", "MllpSender", "read_ack", "split_messages"]
