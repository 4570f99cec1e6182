"""In-memory fakes of the ports message processing uses: an inbox of kept messages
and a sink of the records they map to, each with a failure switch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pacsync.domain.clinical import ParsedMessage
from pacsync.ports import PendingMessage, Settled


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
