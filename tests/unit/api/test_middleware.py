"""Request ids, and the body limit over real HTTP (uvicorn on loopback): a body over
1 MiB is refused before more than the limit is read, announced or chunked."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from pacsync.api.app import create_app
from pacsync.api.middleware import MAX_BODY_BYTES
from pacsync.config import Settings
from pacsync.domain.access import Role

from .conftest import Api, problem

LIMIT = MAX_BODY_BYTES


def test_every_response_has_a_request_id(api: Api) -> None:
    first = api.get("/health", as_=None).headers["x-request-id"]
    second = api.get("/jobs", as_=None).headers["x-request-id"]  # an error response too
    assert len(first) == 32
    assert first != second


def test_a_sane_caller_request_id_is_kept_and_a_strange_one_replaced(api: Api) -> None:
    kept = api.get("/health", as_=None, headers={"X-Request-Id": "trace-7.a:b"})
    assert kept.headers["x-request-id"] == "trace-7.a:b"
    replaced = api.get("/health", as_=None, headers={"X-Request-Id": "<script>"})
    assert replaced.headers["x-request-id"] != "<script>"


def test_an_announced_oversized_body_is_refused_in_process(api: Api) -> None:
    response = api.post("/jobs", content=b"{" + b" " * LIMIT + b"}")
    body = problem(response, 413, "PACS-105")
    assert "1,048,576 bytes" in body["detail"]


class _Server:
    """The app under uvicorn in a thread, on a free loopback port; ``read`` counts the
    body bytes the app took from the server."""

    def __init__(self, settings: Settings) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.read = 0
        app = create_app(settings)

        async def counting(scope: Scope, receive: Receive, send: Send) -> None:
            async def counted() -> Message:
                message = await receive()
                self.read += len(message.get("body", b""))
                return message

            await app(scope, counted, send)

        config = uvicorn.Config(counting, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Served:
    server: _Server
    headers: dict[str, str]


@pytest.fixture
def served(api: Api) -> Iterator[Served]:
    with _Server(api.settings) as server:
        yield Served(server, api.headers(Role.ADMIN))


def test_over_http_an_announced_oversized_body_is_refused_before_it_is_sent(
    served: Served,
) -> None:
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as sock:
        head = (
            "POST /api/v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Authorization: {served.headers['Authorization']}\r\n"
            f"Content-Length: {50 * LIMIT}\r\n\r\n"
        )
        sock.sendall(head.encode())  # no body at all: the answer must not wait for it
        received = b""
        while chunk := sock.recv(65536):  # the server closes the connection after it
            received += chunk
        answer = received.decode()
    assert answer.startswith("HTTP/1.1 413")
    assert "application/problem+json" in answer
    assert "PACS-105" in answer
    assert served.server.read == 0


def test_over_http_a_chunked_body_is_cut_off_at_the_limit(served: Served) -> None:
    chunk = b" " * 65536

    def body() -> Iterator[bytes]:
        yield b"{"
        for _ in range(10 * LIMIT // len(chunk)):  # 10 MiB offered
            yield chunk

    response = httpx.post(
        f"{served.server.url}/api/v1/jobs", headers=served.headers, content=body(), timeout=30
    )
    problem(response, 413, "PACS-105")
    # the app stops at the first message past the limit; a message holds what uvicorn read
    # ahead while the app was busy (its flow control pauses at 64 KiB buffered), not 10 MiB
    assert LIMIT < served.server.read <= LIMIT + 512 * 1024


def test_over_http_a_small_chunked_body_passes(served: Served) -> None:
    response = httpx.post(
        f"{served.server.url}/api/v1/jobs",
        headers=served.headers,
        content=iter([b'{"pipeline": ', b"7}"]),
        timeout=30,
    )
    problem(response, 422, "PACS-105")  # read whole and validated: the limit let it through
