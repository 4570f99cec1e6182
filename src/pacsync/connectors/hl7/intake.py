"""From one received MLLP payload to its acknowledgement: decide, keep, answer.

Only MSH is read.  A message that is accepted is kept in the journal before
AA (CA) is answered; one that cannot be read or is not accepted is logged and
answered AE/AR with the reason.  Messages arriving on any connection while a
commit is under way wait for the next commit, which takes them all: one fsync
for many messages (group commit), and no answer before its message is durable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
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


class GroupCommit:
    """Keeps messages through a journal, one commit at a time, batching what waits."""

    def __init__(self, journal: MessageJournal, *, max_batch: int = MAX_BATCH) -> None:
        self.journal = journal
        self.max_batch = max_batch
        self._waiting: list[tuple[Incoming, asyncio.Future[Kept]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="hl7-journal")
        self.commits = 0

    async def keep(self, messages: Sequence[Incoming]) -> list[Kept]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in messages]
        self._waiting.extend(zip(messages, futures, strict=True))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        return list(await asyncio.gather(*futures))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                messages = [m for m, _ in batch]
                try:
                    kept = await loop.run_in_executor(self._writer, self.journal.keep, messages)
                except Exception as exc:  # every waiting message answers the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.commits += 1
                for (_, future), result in zip(batch, kept, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = None

    def close(self) -> None:
        self._writer.shutdown(wait=True)


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

    async def receive(self, decisions: Sequence[Decision]) -> list[bytes | None]:
        """Keep the decided messages; the answers in order (None: MSH-15 asked for none)."""
        try:
            kept = await self.commit.keep([d.message for d in decisions])
        except Exception as error:  # not kept: refused, so the sender sends them again
            if isinstance(error, (PacsyncError, OSError)):
                log.error("%s: messages could not be kept: %s", self.feed, error)
            else:
                log.exception("%s: messages could not be kept: %s", self.feed, error)
            self.metrics.store_failed(self.feed, len(decisions))
            return [self._store_down(d) for d in decisions]
        answers: list[bytes | None] = []
        for decision, result in zip(decisions, kept, strict=True):
            self.metrics.answered(self.feed, decision.outcome.value, duplicate=result.duplicate)
            answers.append(decision.answer())
        return answers

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
