"""An accepted association's reactors wake on work: with their idle turn made a whole
second long, C-ECHOs are still answered at once (a polling reactor would answer each
only at its next turn)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from pacsync.connectors.dicom import reactor
from pacsync.connectors.dicom.scp import Peer, Peers, Scp

ECHOES = 10


class NoInbox:
    def close(self) -> None:
        pass


def test_echoes_are_answered_without_waiting_for_an_idle_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reactor, "IDLE_WAIT", 1.0)
    inbox: Any = NoInbox()
    scp = Scp("PACSYNC", peers=Peers([Peer("CALLER", "127.0.0.1")]), inbox=inbox,
              search=None, locate=lambda *_: [], port=0)  # type: ignore[arg-type]  # fmt: skip
    port = scp.start()
    try:
        ae = AE(ae_title="CALLER")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="PACSYNC")
        assert assoc.is_established
        started = time.monotonic()
        statuses = [assoc.send_c_echo().Status for _ in range(ECHOES)]
        took = time.monotonic() - started
        assoc.release()
    finally:
        scp.stop()
    assert statuses == [0x0000] * ECHOES
    assert took < ECHOES * 1.0 / 4  # each echo well within one idle turn
