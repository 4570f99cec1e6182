"""An in-memory message journal with the store's rules, a failure switch and a gate.

Accepted messages are kept once per sender and control id; a copy (in the same
call or a later one) is answered with the first one's id and ``duplicate``.
Rejected ones (``accepted`` false) are logged every time.  A call is all or
nothing, as a transaction is.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pacsync.domain.messaging import Incoming, Kept


class MemoryMessageJournal:
    """Messages kept in a list, in the order kept.

    ``messages[id - 1]`` is the message kept with that id.  ``commits`` holds
    what each successful :meth:`keep` call was given (its batch), so a test sees
    how messages were grouped.  ``fail_keeps`` is consumed one item per call: an
    exception is raised and nothing is kept, ``None`` lets that call through.
    While ``gate`` is set to an unset :class:`threading.Event`, calls wait for it
    (``entered`` is set once a call is waiting), so a test can hold a commit
    open while more messages arrive.
    """

    def __init__(self) -> None:
        self.messages: list[Incoming] = []
        self.commits: list[list[Incoming]] = []
        self.calls = 0
        self.fail_keeps: list[Exception | None] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    # -- helpers for tests --------------------------------------------------------------------

    def accepted(self) -> list[Incoming]:
        return [m for m in self.messages if m.accepted]

    def control_ids(self) -> list[str]:
        """Control ids of the accepted messages kept, in the order kept."""
        return [m.control_id for m in self.accepted()]

    # -- MessageJournal -----------------------------------------------------------------------

    def keep(self, messages: Sequence[Incoming]) -> list[Kept]:
        self.calls += 1
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(timeout=30)
        if self.fail_keeps:
            failure = self.fail_keeps.pop(0)
            if failure is not None:
                raise failure
        with self._lock:
            ids = dict(self._ids)
            added: list[Incoming] = []
            kept: list[Kept] = []
            for message in messages:
                key = (message.sender, message.control_id)
                if message.accepted and key in ids:
                    kept.append(Kept(ids[key], True))
                    continue
                added.append(message)
                new_id = len(self.messages) + len(added)
                if message.accepted:
                    ids[key] = new_id
                kept.append(Kept(new_id, False))
            self.messages.extend(added)
            self._ids = ids
            self.commits.append(list(messages))
        return kept


__all__ = ["MemoryMessageJournal"]
