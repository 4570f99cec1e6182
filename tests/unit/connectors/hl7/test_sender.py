"""The MLLP sender against scripted receivers on loopback: ACKs, refusals, retries."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from pacsync.connectors.hl7.mllp import Framer, frame
from pacsync.connectors.hl7.sender import MllpSender, read_ack, split_messages
from pacsync.errors import MllpPeerUnavailable, MllpProtocolError, NegativeAcknowledgement
from pacsync.jobs.retry import RetryPolicy

ADT = b"MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20260101||ADT^A01|C1|P|2.5.1\rPID|1||42\r"

Answer = Callable[[bytes], bytes | None]  # payload -> bytes to send back (None: close)


def ack(control_id: str, code: str = "AA", text: str = "") -> bytes:
    msa = f"MSA|{code}|{control_id}" + (f"|{text}" if text else "")
    return (f"MSH|^~\\&|PACSYNC|HOSP|PMS|CLINIC|20260101||ACK^A01^ACK|X1|P|2.5.1\r{msa}\r").encode()


def control_id(payload: bytes) -> str:
    return payload.split(b"\r")[0].split(b"|")[9].decode()


class Receiver:
    """A one-thread MLLP receiver answering each message with ``answer(payload)``."""

    def __init__(self, answer: Answer, *, chunk: int = 0) -> None:
        self.answer = answer
        self.chunk = chunk  # send answers in pieces of this many bytes
        self.received: list[bytes] = []
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)  # accept wakes up to see ``closed``
        self._closed = threading.Event()
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self.connections += 1
            with conn:
                self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        framer = Framer(1 << 20)
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            payloads, _ = framer.feed(data)
            for payload in payloads:
                self.received.append(payload)
                out = self.answer(payload)
                if out is None:
                    return
                if not self.chunk:
                    conn.sendall(out)
                    continue
                for start in range(0, len(out), self.chunk):
                    conn.sendall(out[start : start + self.chunk])

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(answer: Answer, **options: int) -> Receiver:
        made.append(Receiver(answer, **options))
        return made[-1]

    yield make
    for server in made:
        server.close()


def no_sleep(waits: list[float]) -> Callable[[float], None]:
    return waits.append


def test_a_message_is_sent_framed_and_its_ack_read(receiver: Callable[..., Receiver]) -> None:
    server = receiver(lambda p: frame(ack(control_id(p))))
    with MllpSender("127.0.0.1", server.port) as sender:
        answer = sender.send(ADT)
    assert server.received == [ADT]
    assert (answer.code, answer.control_id, answer.accepted) == ("AA", "C1", True)
    assert answer.seconds > 0
    assert answer.raw == ack("C1")


def test_an_ack_arriving_byte_by_byte_is_read_whole(receiver: Callable[..., Receiver]) -> None:
    server = receiver(lambda p: frame(ack(control_id(p), "CA")), chunk=1)
    with MllpSender("127.0.0.1", server.port) as sender:
        assert sender.send(ADT).code == "CA"


def test_an_ack_larger_than_one_read_is_read_whole(receiver: Callable[..., Receiver]) -> None:
    long_text = "x" * 200_000
    server = receiver(lambda p: frame(ack(control_id(p), "AA", long_text)))
    with MllpSender("127.0.0.1", server.port) as sender:
        assert sender.send(ADT).text == long_text


def test_messages_go_in_order_on_one_connection(receiver: Callable[..., Receiver]) -> None:
    server = receiver(lambda p: frame(ack(control_id(p))))
    payloads = [ADT.replace(b"|C1|", f"|C{n}|".encode()) for n in range(20)]
    with MllpSender("127.0.0.1", server.port) as sender:
        codes = [sender.send(p).control_id for p in payloads]
    assert codes == [f"C{n}" for n in range(20)]
    assert server.received == payloads
    assert server.connections == 1


@pytest.mark.parametrize("code", ["AE", "AR", "CE", "CR"])
def test_a_refusal_is_a_negative_acknowledgement_with_the_reason(
    receiver: Callable[..., Receiver], code: str
) -> None:
    server = receiver(lambda p: frame(ack(control_id(p), code, "unknown patient")))
    waits: list[float] = []
    with (
        MllpSender("127.0.0.1", server.port, sleep=no_sleep(waits)) as sender,
        pytest.raises(NegativeAcknowledgement) as caught,
    ):
        sender.send(ADT)
    assert caught.value.code == "PACS-653"
    assert f"answered {code} to C1: unknown patient" in caught.value.message
    assert (waits, len(server.received)) == ([], 1)  # not retried


def test_an_ack_of_another_control_id_is_a_protocol_error(
    receiver: Callable[..., Receiver],
) -> None:
    server = receiver(lambda p: frame(ack("SOMETHING-ELSE")))
    with (
        MllpSender("127.0.0.1", server.port) as sender,
        pytest.raises(MllpProtocolError, match="acknowledged 'SOMETHING-ELSE', not 'C1'"),
    ):
        sender.send(ADT)


def test_an_answer_that_is_not_an_ack_is_a_protocol_error(
    receiver: Callable[..., Receiver],
) -> None:
    server = receiver(lambda p: frame(b"HTTP/1.1 400 Bad Request\r\n"))
    with MllpSender("127.0.0.1", server.port) as sender, pytest.raises(MllpProtocolError):
        sender.send(ADT)


def test_a_message_without_msh_is_not_sent() -> None:
    with pytest.raises(MllpProtocolError, match="not sent") as caught:
        MllpSender("127.0.0.1", 9).send(b"PID|1||42\r")
    assert caught.value.code == "PACS-652"


def test_a_connection_closed_before_the_ack_is_retried_on_a_new_connection(
    receiver: Callable[..., Receiver],
) -> None:
    answers = iter([None, frame(ack("C1"))])
    server = receiver(lambda p: next(answers))
    waits: list[float] = []
    retry = RetryPolicy(attempts=3, base_delay=0.5, jitter=0.0)
    with MllpSender("127.0.0.1", server.port, retry=retry, sleep=no_sleep(waits)) as sender:
        assert sender.send(ADT).code == "AA"
    assert server.received == [ADT, ADT]  # the same message, the same control id
    assert server.connections == 2
    assert waits == [0.5]


def test_a_silent_receiver_times_out_and_is_retried_then_given_up(
    receiver: Callable[..., Receiver],
) -> None:
    release = threading.Event()

    def silent(_: bytes) -> bytes | None:
        release.wait(5)
        return None

    server = receiver(silent)
    waits: list[float] = []
    retry = RetryPolicy(attempts=2, base_delay=1.0, jitter=0.0)
    try:
        with (
            MllpSender(
                "127.0.0.1", server.port, timeout_s=0.2, retry=retry, sleep=no_sleep(waits)
            ) as sender,
            pytest.raises(MllpPeerUnavailable, match="no ACK within") as caught,
        ):
            sender.send(ADT)
    finally:
        release.set()
    assert caught.value.code == "PACS-651"
    assert waits == [1.0]


def test_a_refused_connection_is_retried_with_backoff_then_given_up() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []
    retry = RetryPolicy(attempts=4, base_delay=0.5, factor=2.0, jitter=0.0)
    sender = MllpSender("127.0.0.1", port, retry=retry, sleep=no_sleep(waits))
    with pytest.raises(MllpPeerUnavailable, match="cannot connect"):
        sender.send(ADT)
    assert waits == [0.5, 1.0, 2.0]


def test_read_ack_takes_the_reason_from_err_8_over_msa_3() -> None:
    raw = (
        b"MSH|^~\\&|A|B|C|D|20260101||ACK^A01^ACK|1|P|2.5.1\rMSA|AE|C9|short\r"
        b"ERR||MSH^1^18|102^Data type error^HL70357|E||||the whole reason\r"
    )
    answer = read_ack(raw)
    assert (answer.code, answer.control_id, answer.text) == ("AE", "C9", "the whole reason")
    assert read_ack(raw.replace(b"\r", b"\n")).control_id == "C9"


@pytest.mark.parametrize(
    "raw", [b"", b"MSH|", b"NOT AN ACK", b"MSH|^~\\&|A|B|C|D|2026||ACK|1|P|2.5\rPID|1\r"]
)
def test_read_ack_refuses_what_is_not_an_ack(raw: bytes) -> None:
    with pytest.raises(MllpProtocolError):
        read_ack(raw)


@pytest.mark.parametrize(
    "text",
    [
        b"MSH|a\rPID|1\rMSH|b\rPID|2\r",
        b"MSH|a\nPID|1\nMSH|b\nPID|2\n",
        b"MSH|a\r\nPID|1\r\n\r\nMSH|b\r\nPID|2\r\n",
        b"\x0bMSH|a\rPID|1\r\x1c\r\x0bMSH|b\rPID|2\r\x1c\r",
        b"\x0bMSH|a\rPID|1\r\x1c\r\n\x0bMSH|b\rPID|2\x1c\r\n",
    ],
)
def test_a_file_splits_into_messages_with_cr_segment_ends(text: bytes) -> None:
    assert split_messages(text) == [b"MSH|a\rPID|1\r", b"MSH|b\rPID|2\r"]


def test_an_empty_file_has_no_messages() -> None:
    assert split_messages(b"\n\r\n  \n") == []


def test_an_ack_with_an_empty_msa_1_is_not_an_acceptance(
    receiver: Callable[..., Receiver],
) -> None:
    server = receiver(lambda p: frame(ack(control_id(p), "")))
    with MllpSender("127.0.0.1", server.port) as sender, pytest.raises(MllpProtocolError):
        sender.send(ADT)


def test_msh_15_ne_is_sent_without_waiting_for_an_ack(receiver: Callable[..., Receiver]) -> None:
    server = receiver(lambda p: b"")  # answers nothing
    quiet = ADT.replace(b"|P|2.5.1\r", b"|P|2.5.1|||NE\r")
    with MllpSender("127.0.0.1", server.port, timeout_s=5) as sender:
        answer = sender.send(quiet)
        assert (answer.code, answer.control_id, answer.accepted) == ("", "C1", True)
        assert answer.seconds < 1


@pytest.mark.parametrize("code", ["", "OK", "aa"])
def test_read_ack_refuses_an_msa_1_outside_table_0008(code: str) -> None:
    with pytest.raises(MllpProtocolError, match="MSA-1"):
        read_ack(ack("C1", code))


def test_a_byte_order_mark_before_the_first_msh_is_dropped() -> None:
    assert split_messages(b"\xef\xbb\xbfMSH|a\r\nPID|1\r\n") == [b"MSH|a\rPID|1\r"]
