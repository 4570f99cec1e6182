"""Sending processed messages on to an MLLP route, in arrival order.

Each message is sent until its ACK: a transient failure (the receiver down, no
ACK in time) stops the route where it is, to go on later from the same message
(order kept; the resend carries the same control id); a refusal (AE/AR) is noted
with its reason and the route goes on with the next message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pacsync.errors import PacsyncError
from pacsync.ports import MessageSender, MllpOutbox

BATCH = 200


@dataclass(slots=True)
class DeliveryCounts:
    sent: int = 0
    refused: int = 0
    stopped: dict[str, str | bool | None] | None = None  # the transient error that stopped it

    def as_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "refused": self.refused, "stopped": self.stopped}


def deliver(
    route: str,
    outbox: MllpOutbox,
    sender: MessageSender,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None),
) -> DeliveryCounts:
    """Send what waits for ``route`` until nothing is left or the receiver is unreachable."""
    counts = DeliveryCounts()
    try:
        while not should_stop():
            waiting = outbox.pending(route, BATCH)
            if not waiting:
                break
            for item in waiting:
                if should_stop():
                    return counts
                try:
                    code = sender.send(item.payload)
                except PacsyncError as error:
                    if error.transient:
                        outbox.tried(item.delivery_id, error.as_dict())
                        counts.stopped = error.as_dict()
                        return counts
                    outbox.refused(item.delivery_id, error.as_dict(), now())
                    counts.refused += 1
                    continue
                outbox.sent(item.delivery_id, code, now())
                counts.sent += 1
    finally:
        sender.close()
    return counts


__all__ = ["BATCH", "DeliveryCounts", "deliver"]
