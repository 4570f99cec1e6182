"""In-memory fakes of the ports message processing and forwarding use: an inbox of
kept messages, a sink of the records they map to, a route's outbox and a scripted
MLLP peer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pacsync.domain.clinical import ParsedMessage
from pacsync.ports import Outgoing, PendingMessage, Settled


class MemoryInbox:
    """Messages waiting in arrival order; ``settled`` holds every outcome noted, by id."""

    def __init__(self, payloads: Sequence[bytes] = (), encoding: str = "utf-8") -> None:
        self.waiting: list[PendingMessage] = [
            PendingMessage(i, payload, encoding) for i, payload in enumerate(payloads, 1)
        ]
        self.settled: dict[int, Settled] = {}
        self.settle_calls = 0

    def pending(self, feed: str | None, limit: int) -> list[PendingMessage]:
        return [m for m in self.waiting if m.id not in self.settled][:limit]

    def settle(self, outcomes: Sequence[Settled], now: dt.datetime) -> None:
        self.settle_calls += 1
        for outcome in outcomes:
            self.settled[outcome.id] = outcome


class MemorySink:
    """Keeps what it is given; ``fail_with`` makes the next ``apply`` raise it."""

    def __init__(self) -> None:
        self.applied: list[list[tuple[int, ParsedMessage]]] = []
        self.fail_with: Exception | None = None

    def apply(self, messages: Sequence[tuple[int, ParsedMessage]]) -> int:
        if self.fail_with is not None:
            failure, self.fail_with = self.fail_with, None
            raise failure
        self.applied.append(list(messages))
        return len(messages)


class MemoryOutbox:
    """Deliveries of one or more routes; ``state`` by delivery id: pending, sent, refused."""

    def __init__(self, route: str, payloads: Sequence[bytes]) -> None:
        self.items = {i: Outgoing(i, i, payload, f"C{i}") for i, payload in enumerate(payloads, 1)}
        self.route = route
        self.state = dict.fromkeys(self.items, "pending")
        self.attempts = dict.fromkeys(self.items, 0)
        self.errors: dict[int, dict[str, Any]] = {}

    def pending(self, route: str, limit: int) -> list[Outgoing]:
        waiting = [self.items[i] for i in sorted(self.items) if self.state[i] == "pending"]
        return waiting[:limit] if route == self.route else []

    def sent(self, delivery_id: int, ack_code: str, now: dt.datetime) -> None:
        self.state[delivery_id] = "sent"
        self.attempts[delivery_id] += 1

    def refused(self, delivery_id: int, error: dict[str, Any], now: dt.datetime) -> None:
        self.state[delivery_id] = "refused"
        self.attempts[delivery_id] += 1
        self.errors[delivery_id] = error

    def tried(self, delivery_id: int, error: dict[str, Any]) -> None:
        self.attempts[delivery_id] += 1
        self.errors[delivery_id] = error


class ScriptedSender:
    """Answers each send with the next scripted outcome (an ACK code or an exception);
    ``AA`` once the script is used up.  ``received`` lists the payloads it was given."""

    def __init__(self, script: Sequence[str | Exception] = ()) -> None:
        self.script = list(script)
        self.received: list[bytes] = []
        self.closed = 0

    def send(self, payload: bytes) -> str:
        self.received.append(payload)
        outcome = self.script.pop(0) if self.script else "AA"
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self) -> None:
        self.closed += 1
