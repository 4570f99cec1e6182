"""The httpx webhook sender against a real server on loopback: what each answer or
failure becomes, and that nothing of a URL's path reaches a message."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pacsync.connectors.http.webhooks import BODY_LIMIT, HttpWebhookSender, origin
from pacsync.errors import ConnectionTimeout, DeliveryRefused, RateLimited, ReceiverUnavailable


class Handler(BaseHTTPRequestHandler):
    """``/<status>`` answers that status; ``/slow`` answers after a second; every request
    is recorded on the server."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        if self.path == "/slow":
            time.sleep(1.0)
        status = 200 if self.path in ("/slow", "/big") else int(self.path.strip("/").split("?")[0])
        answer = b"x" * (BODY_LIMIT * 3) if self.path == "/big" else b"thanks"
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/200")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    found = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.daemon_threads = True
    found.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=found.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield found
    found.shutdown()
    found.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sender() -> Iterator[HttpWebhookSender]:
    made = HttpWebhookSender()
    yield made
    made.close()


def _url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_a_2xx_answer_is_delivered_with_body_and_headers_sent(
    server: ThreadingHTTPServer, sender: HttpWebhookSender
) -> None:
    headers = {"content-type": "application/json", "webhook-id": "msg_1"}
    answer = sender.send(_url(server, "/204"), b'{"a":1}', headers, 5.0)
    assert (answer.status, answer.error) == (204, None)
    ((path, sent, body),) = server.seen  # type: ignore[attr-defined]
    assert (path, body, sent["webhook-id"]) == ("/204", b'{"a":1}', "msg_1")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ReceiverUnavailable),
        (503, ReceiverUnavailable),
        (408, ReceiverUnavailable),
        (429, RateLimited),
        (400, DeliveryRefused),
        (404, DeliveryRefused),
        (410, DeliveryRefused),
        (302, DeliveryRefused),
    ],
)
def test_other_answers_are_transient_or_terminal(
    server: ThreadingHTTPServer, sender: HttpWebhookSender, status: int, error: type
) -> None:
    answer = sender.send(_url(server, f"/{status}?token=hush"), b"{}", {}, 5.0)
    assert answer.status == status
    assert isinstance(answer.error, error)
    assert answer.error.transient is (status in (408, 429, 500, 503))
    assert "hush" not in str(answer.error)
    assert len(server.seen) == 1  # type: ignore[attr-defined]  # a redirect is not followed


def test_a_long_answer_is_cut(server: ThreadingHTTPServer, sender: HttpWebhookSender) -> None:
    answer = sender.send(_url(server, "/big"), b"{}", {}, 5.0)
    assert len(answer.body) == BODY_LIMIT


def test_no_answer_in_time_is_pacs_001(
    server: ThreadingHTTPServer, sender: HttpWebhookSender
) -> None:
    with pytest.raises(ConnectionTimeout, match=r"no answer within 0\.2 s"):
        sender.send(_url(server, "/slow"), b"{}", {}, 0.2)


def test_a_refused_connection_is_pacs_001(sender: HttpWebhookSender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionTimeout) as raised:
        sender.send(f"http://127.0.0.1:{port}/secret-path", b"{}", {}, 2.0)
    assert raised.value.transient
    assert "secret-path" not in str(raised.value)


def test_an_unusable_url_is_terminal(sender: HttpWebhookSender) -> None:
    with pytest.raises(DeliveryRefused):
        sender.send("ftp://example.org/x", b"{}", {}, 2.0)


def test_origin_keeps_scheme_host_and_port_only() -> None:
    assert origin("https://user:pw@hooks.example.org:8443/T0/B1/XYZ?k=1") == (
        "https://hooks.example.org:8443"
    )
    assert origin("http://[::1") == "<unparseable URL>"
