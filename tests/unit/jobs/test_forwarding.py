"""Sending processed messages on to a route: in order, each until its ACK; a refusal
is noted and passed, an unreachable receiver stops the route at that message."""

from __future__ import annotations

from pacsync.connectors.memory.clinical import MemoryOutbox, ScriptedSender
from pacsync.domain.messaging import Route
from pacsync.errors import MllpPeerUnavailable, NegativeAcknowledgement
from pacsync.jobs.forwarding import deliver

PAYLOADS = [f"MSH|^~\\&|A|B|||1||ADT^A01|C{i}|P|2.5\r".encode() for i in range(1, 5)]


def test_every_message_is_sent_in_order() -> None:
    outbox, peer = MemoryOutbox("ris", PAYLOADS), ScriptedSender()
    counts = deliver("ris", outbox, peer)
    assert (counts.sent, counts.refused, counts.stopped) == (4, 0, None)
    assert peer.received == PAYLOADS
    assert set(outbox.state.values()) == {"sent"}
    assert peer.closed == 1


def test_a_refusal_is_noted_and_the_route_goes_on() -> None:
    outbox = MemoryOutbox("ris", PAYLOADS)
    peer = ScriptedSender(["AA", NegativeAcknowledgement("AE: PID-3 missing")])
    counts = deliver("ris", outbox, peer)
    assert (counts.sent, counts.refused) == (3, 1)
    assert outbox.state == {1: "sent", 2: "refused", 3: "sent", 4: "sent"}
    assert outbox.errors[2]["code"] == "PACS-653"


def test_an_unreachable_receiver_stops_the_route_at_that_message() -> None:
    outbox = MemoryOutbox("ris", PAYLOADS)
    peer = ScriptedSender(["AA", MllpPeerUnavailable("connection refused")])
    counts = deliver("ris", outbox, peer)
    assert counts.sent == 1
    assert counts.stopped is not None
    assert counts.stopped["code"] == "PACS-651"
    assert outbox.state == {1: "sent", 2: "pending", 3: "pending", 4: "pending"}
    resumed = deliver("ris", outbox, ScriptedSender())  # later: from the same message on
    assert resumed.sent == 3
    assert outbox.attempts[2] == 2


def test_a_route_takes_its_types_and_feeds() -> None:
    route = Route("ris", "10.0.0.5", 2575, kinds=("ADT^*", "ORU^R01", "SIU"), feeds=("pms",))
    assert route.takes("ADT^A08", "pms")
    assert route.takes("ORU^R01", "pms")
    assert route.takes("SIU^S12", "pms")
    assert not route.takes("ORU^R30", "pms")
    assert not route.takes("DFT^P03", "pms")
    assert not route.takes("ADT^A01", "lab")
    assert Route("all", "h", 1).takes("DFT^P03", "any feed")
