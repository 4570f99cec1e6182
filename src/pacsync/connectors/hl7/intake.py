"""From one received MLLP payload to its acknowledgement: decide, keep, answer.

Only MSH is read.  A message that is accepted is kept in the journal before
AA (CA) is answered; one that cannot be read or is not accepted is logged and
answered AE/AR with the reason.  Messages arriving on any connection while a
commit is under way wait for the next commit, which takes them all: one fsync
for many messages (group commit), and no answer before its message is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from pacsync.connectors.hl7 import msh
from pacsync.connectors.hl7.ack import AckCode, ack_code, build_ack, unreadable_ack
from pacsync.connectors.hl7.metrics import METRICS, Hl7Metrics
from pacsync.connectors.hl7.mllp import Dropped, Problem
from pacsync.domain.messaging import AcceptPolicy, Incoming, Kept
from pacsync.errors import ConfigError, PacsyncError
from pacsync.ports import MessageJournal

log = logging.getLogger("pacsync.hl7.intake")

MAX_BATCH = 1000  # messages in one commit
MAX_BYTES = 64 * 2**20  # of payloads in one commit (a larger message goes alone)


class GroupCommit:
    """Keeps messages through a journal, one commit at a time, batching what waits.

    A commit takes whatever waits, up to ``max_batch`` messages and ``max_bytes`` (a larger
    :meth:`submit` is kept over several commits); each submission's future
    completes with its results in order, or with the first failed commit's error."""

    def __init__(
        self, journal: MessageJournal, *, max_batch: int = MAX_BATCH, max_bytes: int = MAX_BYTES
    ) -> None:
        self.journal = journal
        self.max_batch, self.max_bytes = max_batch, max_bytes
        self._waiting: deque[_Submitted] = deque()
        self._draining: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="hl7-journal")
        self.commits = 0

    def submit(self, messages: Sequence[Incoming]) -> asyncio.Future[list[Kept]]:
        """Queue ``messages`` for the next commit (called on the event loop)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Kept]] = loop.create_future()
        self._waiting.append(_Submitted(list(messages), future, []))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._take()
                messages = [m for entry, start, stop in batch for m in entry.messages[start:stop]]
                try:
                    kept = await loop.run_in_executor(self._writer, self.journal.keep, messages)
                except Exception as exc:  # every message waiting on it answers the failure
                    for entry, _, stop in batch:
                        entry.fail(exc)
                        if stop < len(entry.messages):  # the rest of it is answered too
                            self._waiting.popleft()
                    continue
                self.commits += 1
                offset = 0
                for entry, start, stop in batch:
                    entry.done(kept[offset : offset + stop - start])
                    offset += stop - start
        finally:
            self._draining = None

    def _take(self) -> list[tuple[_Submitted, int, int]]:
        """The next commit: whole submissions, and the first part of one too large
        (``max_batch`` messages, or ``max_bytes`` of payload, whichever comes first)."""
        batch: list[tuple[_Submitted, int, int]] = []
        room, budget = self.max_batch, self.max_bytes
        while self._waiting and room and budget > 0:
            entry = self._waiting[0]
            start = stop = len(entry.kept)
            while stop < len(entry.messages) and room and budget > 0:
                budget -= len(entry.messages[stop].payload)
                room -= 1
                stop += 1
            batch.append((entry, start, stop))
            if stop < len(entry.messages):
                break
            self._waiting.popleft()
        return batch

    def close(self) -> None:
        self._writer.shutdown(wait=True)


@dataclass(slots=True)
class _Submitted:
    """One submission, committed in one or more parts."""

    messages: list[Incoming]
    future: asyncio.Future[list[Kept]]
    kept: list[Kept]  # of the parts committed so far

    def done(self, kept: list[Kept]) -> None:
        self.kept += kept
        if len(self.kept) == len(self.messages) and not self.future.done():
            self.future.set_result(self.kept)

    def fail(self, error: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to keep for one payload and the answer to send once it is kept."""

    message: Incoming
    header: msh.Header | None
    outcome: AckCode  # AA, AE or AR
    condition: int | None = None
    reason: str = ""
    field: int | None = None

    def answer(self, outcome: AckCode | None = None) -> bytes | None:
        code = outcome or self.outcome
        if self.header is None:
            return unreadable_ack(self.reason, self.condition or msh.SEGMENT_SEQUENCE_ERROR)
        sent = ack_code(self.header, code, self.condition)
        if sent is None:
            return None
        return build_ack(
            self.header,
            sent,
            condition=self.condition,
            reason=self.reason,
            field=self.field,
        )


class Intake:
    """Decides and keeps the payloads of one feed; answers in the order received."""

    def __init__(
        self,
        feed: str,
        commit: GroupCommit,
        *,
        policy: AcceptPolicy | None = None,
        default_encoding: str = "utf-8",
        metrics: Hl7Metrics | None = None,
    ) -> None:
        self.feed = feed
        self.commit = commit
        self.policy = policy or AcceptPolicy()
        try:
            self.default_encoding = msh.codec(default_encoding)
        except LookupError:
            raise ConfigError(
                f"PACSYNC_HL7_ENCODING {default_encoding!r} is not a character set",
                hint="Use an HL7 name (UNICODE UTF-8, 8859/1) or a Python one (utf-8, cp1252)",
            ) from None
        self.metrics = metrics or METRICS

    def decide(self, payload: bytes, peer: str) -> Decision:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        try:
            header = msh.read_header(payload, self.default_encoding)
        except msh.HeaderError as error:
            return self._unreadable(payload, peer, now, error.reason, error.condition)
        outcome, condition, reason, field = AckCode.AA, None, "", None
        refusal = self.policy.refusal(
            header.message_type, header.trigger, header.version, header.processing_id
        )
        if refusal is not None:
            outcome, condition, reason, field = (
                AckCode.AR,
                refusal.condition,
                refusal.reason,
                refusal.field,
            )
        else:
            try:
                msh.decode(payload, header)
            except msh.HeaderError as error:
                outcome, condition, reason, field = (
                    AckCode.AE,
                    error.condition,
                    error.reason,
                    error.field,
                )
        sent = ack_code(header, outcome, condition)
        message = Incoming(
            feed=self.feed,
            sender=header.sender,
            control_id=header.control_id,
            kind=header.kind,
            version=header.version,
            payload=payload,
            encoding=header.encoding,
            peer=peer,
            received_at=now,
            ack_code=str(sent or ""),
            accepted=outcome is AckCode.AA,
            reason=reason or None,
        )
        return Decision(message, header, outcome, condition, reason, field)

    def dropped(self, event: Dropped, peer: str) -> Decision | None:
        """A block the framer could not pass on: an oversize one is answered AR."""
        self.metrics.dropped(self.feed, event.problem.name.lower(), event.size)
        if event.problem is not Problem.TOO_LARGE:
            log.warning(
                "%s: %s from %s (%d bytes)", self.feed, event.problem.value, peer, event.size
            )
            return None
        decision = self.decide(event.head, peer)
        reason = f"message of {event.size} bytes is larger than the maximum"
        answered = (
            AckCode.AR
            if decision.header is None
            else str(ack_code(decision.header, AckCode.AR, msh.APPLICATION_INTERNAL_ERROR) or "")
        )
        rejected = replace(
            decision.message, payload=event.head, ack_code=answered, accepted=False, reason=reason
        )
        return Decision(
            rejected, decision.header, AckCode.AR, msh.APPLICATION_INTERNAL_ERROR, reason
        )

    def submit(self, decisions: Sequence[Decision]) -> asyncio.Future[list[Kept]]:
        """Queue the decided messages for the next commit; :meth:`answers` once it is done."""
        return self.commit.submit([d.message for d in decisions])

    def answers(
        self, decisions: Sequence[Decision], kept: asyncio.Future[list[Kept]]
    ) -> list[bytes | None]:
        """The answers in order, once ``kept`` is done (None: MSH-15 asked for none)."""
        error = kept.exception()
        if error is not None:  # not kept: refused, so the sender sends them again
            if isinstance(error, (PacsyncError, OSError)):
                log.error("%s: messages could not be kept: %s", self.feed, error)
            else:
                log.error("%s: messages could not be kept: %r", self.feed, error, exc_info=error)
            self.metrics.store_failed(self.feed, len(decisions))
            return [self._store_down(d) for d in decisions]
        answers: list[bytes | None] = []
        for decision, result in zip(decisions, kept.result(), strict=True):
            self.metrics.answered(self.feed, decision.outcome.value, duplicate=result.duplicate)
            answers.append(decision.answer())
        return answers

    async def receive(self, decisions: Sequence[Decision]) -> list[bytes | None]:
        """Keep the decided messages; the answers in order."""
        kept = self.submit(decisions)
        with contextlib.suppress(Exception):  # a failed commit is answered by answers()
            await kept
        return self.answers(decisions, kept)

    def _store_down(self, decision: Decision) -> bytes | None:
        """Not kept: rejected, so the sender sends it again later."""
        self.metrics.answered(self.feed, AckCode.AR.value, duplicate=False)
        failed = Decision(
            decision.message,
            decision.header,
            AckCode.AR,
            msh.APPLICATION_INTERNAL_ERROR,
            "the message store is unavailable: send again later",
        )
        return failed.answer()

    def _unreadable(
        self, payload: bytes, peer: str, now: dt.datetime, reason: str, condition: int
    ) -> Decision:
        message = Incoming(
            feed=self.feed,
            sender="",
            control_id="",
            kind="",
            version="",
            payload=payload,
            encoding="latin-1",
            peer=peer,
            received_at=now,
            ack_code=AckCode.AR,
            accepted=False,
            reason=reason,
        )
        return Decision(message, None, AckCode.AR, condition, reason)


__all__ = ["Decision", "GroupCommit", "Intake"]
