"""An accepted association's socket read in large pieces: a PDU's length comes back
whole however the peer's writes split it, and what came before the peer closed is
returned as pynetdicom returns it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pacsync.connectors.dicom.transport import read_in_large_pieces


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, Any]]:
    """A peer's socket, and the association-like holder of ours."""
    ours, peer = socket.socketpair()
    wrapper = SimpleNamespace(socket=ours, recv=None)
    assoc: Any = SimpleNamespace(dul=SimpleNamespace(socket=wrapper))
    read_in_large_pieces(assoc)
    yield peer, wrapper
    ours.close()
    peer.close()


def test_a_pdu_written_in_pieces_is_read_whole(pair: tuple[socket.socket, Any]) -> None:
    peer, wrapper = pair
    payload = bytes(range(256)) * 600  # 150 KiB, more than one kernel buffer at a time

    def write() -> None:
        for start in range(0, len(payload), 10_000):
            peer.sendall(payload[start : start + 10_000])
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    data = wrapper.recv(len(payload))
    writer.join()
    assert isinstance(data, bytearray)
    assert data == payload


def test_what_came_before_the_peer_closed_is_returned(pair: tuple[socket.socket, Any]) -> None:
    peer, wrapper = pair
    peer.sendall(b"\x04\x00\x00\x00")
    peer.shutdown(socket.SHUT_WR)
    assert wrapper.recv(6) == bytearray(b"\x04\x00\x00\x00")
    assert wrapper.recv(6) == bytearray()
