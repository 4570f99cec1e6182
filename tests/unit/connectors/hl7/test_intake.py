"""Intake on the in-memory journal: decide from MSH, keep before answering, group commits."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from pacsync.connectors.hl7 import msh
from pacsync.connectors.hl7.intake import GroupCommit, Intake
from pacsync.connectors.hl7.metrics import Hl7Metrics, register
from pacsync.connectors.hl7.mllp import Dropped, Problem
from pacsync.connectors.hl7.sender import read_ack
from pacsync.connectors.memory import MemoryMessageJournal
from pacsync.domain.messaging import AcceptPolicy
from pacsync.errors import ConfigError, StoreUnavailable

PEER = "127.0.0.1:40000"


def adt(
    control_id: str = "MSG1",
    *,
    kind: str = "ADT^A01^ADT_A01",
    version: str = "2.5.1",
    processing: str = "P",
    accept: str = "",
    charset: str = "",
    body: bytes = b"PID|1||42||Doe^Jane\r",
    sender: str = "PMS|CLINIC",
) -> bytes:
    fields = [
        "MSH", "^~\\&", sender, "PACSYNC|HOSP", "20260101120000", "", kind, control_id,
        processing, version, "", "", accept, "", "", charset,
    ]  # fmt: skip
    return ("|".join(fields).rstrip("|") + "\r").encode("latin-1") + body


@pytest.fixture
def journal() -> MemoryMessageJournal:
    return MemoryMessageJournal()


@pytest.fixture
def metrics() -> Hl7Metrics:
    return Hl7Metrics()


@pytest.fixture
def commit(journal: MemoryMessageJournal) -> Iterator[GroupCommit]:
    group = GroupCommit(journal)
    yield group
    group.close()


@pytest.fixture
def intake(commit: GroupCommit, metrics: Hl7Metrics) -> Intake:
    return Intake("pms", commit, metrics=metrics)


def sample(metrics: Hl7Metrics, name: str, **labels: str) -> float:
    registry = CollectorRegistry()
    register(registry, metrics)
    return registry.get_sample_value(name, labels) or 0.0


def receive(intake: Intake, *payloads: bytes) -> list[bytes | None]:
    decisions = [intake.decide(p, PEER) for p in payloads]
    return asyncio.run(intake.receive(decisions))


# -- deciding ---------------------------------------------------------------------------------


def test_an_accepted_message_is_described_for_the_journal(intake: Intake) -> None:
    decision = intake.decide(adt("C1"), PEER)
    message = decision.message
    assert (message.feed, message.sender, message.control_id) == ("pms", "PMS|CLINIC", "C1")
    assert (message.kind, message.version, message.encoding) == ("ADT^A01", "2.5.1", "utf-8")
    assert (message.ack_code, message.accepted, message.reason) == ("AA", True, None)
    assert message.payload == adt("C1")
    assert message.peer == PEER
    assert message.received_at.tzinfo is None


@pytest.mark.parametrize(
    ("payload", "condition", "field", "words"),
    [
        (adt(kind="ORM^O01"), msh.UNSUPPORTED_MESSAGE_TYPE, 9, "message type ORM"),
        (adt(kind="ADT^A99"), msh.UNSUPPORTED_EVENT_CODE, 9, "ADT^A99"),
        (adt(processing="X"), msh.UNSUPPORTED_PROCESSING_ID, 11, "processing id 'X'"),
        (adt(version="3.0"), msh.UNSUPPORTED_VERSION_ID, 12, "version '3.0'"),
    ],
)
def test_what_the_policy_refuses_is_answered_ar_with_the_condition(
    intake: Intake, payload: bytes, condition: int, field: int, words: str
) -> None:
    decision = intake.decide(payload, PEER)
    assert (decision.outcome, decision.condition, decision.field) == ("AR", condition, field)
    assert words in decision.reason
    assert not decision.message.accepted
    assert decision.message.ack_code == "AR"
    answer = decision.answer()
    assert answer is not None
    ack = read_ack(answer)
    assert (ack.code, ack.control_id) == ("AR", "MSG1")
    assert f"|{condition}^".encode() in answer
    assert words.replace("^", " ") in ack.text  # the component separator cannot be in ERR-8


def test_a_policy_of_type_wild_cards_accepts_every_trigger_of_the_type(
    commit: GroupCommit,
) -> None:
    intake = Intake("pms", commit, policy=AcceptPolicy(kinds=frozenset({"ADT^*"})))
    assert intake.decide(adt(kind="ADT^A99"), PEER).outcome == "AA"
    assert intake.decide(adt(kind="ORU^R01"), PEER).outcome == "AR"


def test_a_body_not_in_the_declared_character_set_is_answered_ae(intake: Intake) -> None:
    payload = adt(charset="UNICODE UTF-8", body=b"PID|1||42||M\xfcller\r")
    decision = intake.decide(payload, PEER)
    assert (decision.outcome, decision.condition, decision.field) == ("AE", 102, 18)
    assert not decision.message.accepted
    assert decision.message.encoding == "utf-8"
    answer = decision.answer()
    assert answer is not None
    assert read_ack(answer).code == "AE"
    assert "not valid utf-8" in read_ack(answer).text


def test_latin_1_declared_in_msh_18_is_accepted(intake: Intake) -> None:
    decision = intake.decide(adt(charset="8859/1", body=b"PID|1||42||M\xfcller\r"), PEER)
    assert decision.outcome == "AA"
    assert decision.message.encoding == "iso8859-1"


def test_the_default_encoding_applies_without_msh_18(commit: GroupCommit) -> None:
    intake = Intake("pms", commit, default_encoding="iso8859-1")
    decision = intake.decide(adt(body=b"PID|1||42||M\xfcller\r"), PEER)
    assert (decision.outcome, decision.message.encoding) == ("AA", "iso8859-1")


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        (b"hello world", msh.SEGMENT_SEQUENCE_ERROR),
        (b"PID|1||42\r", msh.SEGMENT_SEQUENCE_ERROR),
        (adt("")[: adt("").index(b"\r")] + b"\r", msh.REQUIRED_FIELD_MISSING),
    ],
)
def test_what_cannot_be_read_is_answered_ar_without_a_control_id(
    intake: Intake, payload: bytes, condition: int
) -> None:
    decision = intake.decide(payload, PEER)
    assert (decision.header, decision.outcome, decision.condition) == (None, "AR", condition)
    assert (decision.message.control_id, decision.message.accepted) == ("", False)
    assert decision.message.reason
    answer = decision.answer()
    assert answer is not None
    assert (read_ack(answer).code, read_ack(answer).control_id) == ("AR", "UNKNOWN")


# -- dropped blocks ---------------------------------------------------------------------------


def test_bytes_outside_a_block_are_counted_and_not_answered(
    intake: Intake, metrics: Hl7Metrics
) -> None:
    assert intake.dropped(Dropped(Problem.OUTSIDE_BLOCK, 12), PEER) is None
    assert sample(metrics, "pacsync_hl7_dropped_total", feed="pms", problem="outside_block") == 1


def test_an_oversize_block_is_answered_ar_with_the_control_id_of_its_head(
    intake: Intake, metrics: Hl7Metrics
) -> None:
    head = adt("BIG1", accept="")[:200]
    decision = intake.dropped(Dropped(Problem.TOO_LARGE, 5_000_000, head), PEER)
    assert decision is not None
    assert (decision.outcome, decision.condition) == ("AR", msh.APPLICATION_INTERNAL_ERROR)
    assert (decision.message.control_id, decision.message.accepted) == ("BIG1", False)
    assert decision.message.payload == head
    assert "5000000 bytes" in (decision.message.reason or "")
    answer = decision.answer()
    assert answer is not None
    ack = read_ack(answer)
    assert (ack.code, ack.control_id) == ("AR", "BIG1")
    assert "larger than the maximum" in ack.text
    assert sample(metrics, "pacsync_hl7_dropped_total", feed="pms", problem="too_large") == 1


def test_an_oversize_block_in_enhanced_mode_is_answered_ce(intake: Intake) -> None:
    """CR is for a type, trigger, processing id or version not taken; a block too large
    to commit is a commit error."""
    decision = intake.dropped(Dropped(Problem.TOO_LARGE, 9000, adt("BIG2", accept="AL")), PEER)
    assert decision is not None
    assert decision.message.ack_code == "CE"
    answer = decision.answer()
    assert answer is not None
    assert read_ack(answer).code == "CE"


def test_an_oversize_block_without_a_readable_head_is_answered_ar_unknown(intake: Intake) -> None:
    decision = intake.dropped(Dropped(Problem.TOO_LARGE, 9000, b"\x00" * 100), PEER)
    assert decision is not None
    answer = decision.answer()
    assert answer is not None
    assert (read_ack(answer).code, read_ack(answer).control_id) == ("AR", "UNKNOWN")
    assert decision.message.ack_code == "AR"


# -- keeping and answering --------------------------------------------------------------------


def test_messages_are_kept_before_they_are_answered_in_order(
    intake: Intake, journal: MemoryMessageJournal, metrics: Hl7Metrics
) -> None:
    answers = receive(intake, adt("C1"), b"junk", adt("C2", kind="ORM^O01"), adt("C3"))
    assert [read_ack(a).code if a else None for a in answers] == ["AA", "AR", "AR", "AA"]
    assert [read_ack(a).control_id for a in answers if a] == ["C1", "UNKNOWN", "C2", "C3"]
    assert journal.control_ids() == ["C1", "C3"]
    assert [m.accepted for m in journal.messages] == [True, False, False, True]
    assert len(journal.commits) == 1
    assert sample(metrics, "pacsync_hl7_messages_total", feed="pms", ack="AA") == 2
    assert sample(metrics, "pacsync_hl7_messages_total", feed="pms", ack="AR") == 2


def test_a_duplicate_is_answered_aa_and_kept_once(
    intake: Intake, journal: MemoryMessageJournal, metrics: Hl7Metrics
) -> None:
    first = receive(intake, adt("C1"))
    again = receive(intake, adt("C1"), adt("C1"))
    assert [read_ack(a).code for a in first + again if a] == ["AA", "AA", "AA"]
    assert journal.control_ids() == ["C1"]
    assert sample(metrics, "pacsync_hl7_duplicates_total", feed="pms") == 2
    # the same control id from another sender is another message
    receive(intake, adt("C1", sender="LAB|CLINIC"))
    assert journal.control_ids() == ["C1", "C1"]


def test_msh_15_ne_keeps_the_message_and_sends_nothing(
    intake: Intake, journal: MemoryMessageJournal
) -> None:
    assert receive(intake, adt("C1", accept="NE")) == [None]
    assert journal.control_ids() == ["C1"]
    assert journal.messages[0].ack_code == ""


def test_msh_15_er_answers_only_errors(intake: Intake, journal: MemoryMessageJournal) -> None:
    answers = receive(intake, adt("C1", accept="ER"), adt("C2", accept="ER", version="9.9"))
    assert answers[0] is None
    assert answers[1] is not None
    assert read_ack(answers[1]).code == "CR"
    assert [m.ack_code for m in journal.messages] == ["", "CR"]


def test_msh_15_su_answers_only_successes(intake: Intake) -> None:
    answers = receive(intake, adt("C1", accept="SU"), adt("C2", accept="SU", version="9.9"))
    assert answers[0] is not None
    assert read_ack(answers[0]).code == "CA"
    assert answers[1] is None


def test_msh_15_al_answers_commit_accept(intake: Intake) -> None:
    (answer,) = receive(intake, adt("C1", accept="AL"))
    assert answer is not None
    assert read_ack(answer).code == "CA"


# -- group commit -----------------------------------------------------------------------------


async def _concurrently(intake: Intake, journal: MemoryMessageJournal, count: int) -> list[bytes]:
    """One message held in a commit while ``count`` more arrive from other connections."""
    journal.gate = threading.Event()
    first = asyncio.ensure_future(intake.receive([intake.decide(adt("HELD"), PEER)]))
    while not journal.entered.is_set():
        await asyncio.sleep(0.001)
    others = [
        asyncio.ensure_future(intake.receive([intake.decide(adt(f"C{n}"), f"peer{n}")]))
        for n in range(count)
    ]
    await asyncio.sleep(0.01)
    assert not any(o.done() for o in others)  # nobody is answered before the commit
    journal.gate.set()
    answers = [a for batch in await asyncio.gather(first, *others) for a in batch]
    return [a for a in answers if a is not None]


def test_messages_arriving_during_a_commit_share_the_next_one(
    intake: Intake, commit: GroupCommit, journal: MemoryMessageJournal
) -> None:
    answers = asyncio.run(_concurrently(intake, journal, 50))
    assert [len(batch) for batch in journal.commits] == [1, 50]
    assert commit.commits == 2
    assert sorted(read_ack(a).control_id for a in answers) == sorted(
        ["HELD", *(f"C{n}" for n in range(50))]
    )
    assert all(read_ack(a).code == "AA" for a in answers)


def test_a_batch_is_at_most_max_batch_messages(journal: MemoryMessageJournal) -> None:
    group = GroupCommit(journal, max_batch=8)
    try:
        asyncio.run(_concurrently(Intake("pms", group), journal, 20))
    finally:
        group.close()
    assert [len(batch) for batch in journal.commits] == [1, 8, 8, 4]


@pytest.mark.parametrize(
    "failure", [StoreUnavailable("the store is down"), OSError(5, "I/O error")]
)
def test_a_failed_commit_answers_every_waiter_ar_and_nothing_is_claimed_kept(
    intake: Intake,
    journal: MemoryMessageJournal,
    metrics: Hl7Metrics,
    failure: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal.fail_keeps = [None, failure]  # the held message's commit passes, the next fails
    answers = asyncio.run(_concurrently(intake, journal, 10))
    acks = [read_ack(a) for a in answers]
    assert journal.control_ids() == ["HELD"]
    kept = [a for a in acks if a.code == "AA"]
    refused = [a for a in acks if a.code == "AR"]
    assert [a.control_id for a in kept] == ["HELD"]
    assert sorted(a.control_id for a in refused) == sorted(f"C{n}" for n in range(10))
    assert all("store is unavailable" in a.text for a in refused)
    assert sample(metrics, "pacsync_hl7_store_failures_total", feed="pms") == 10
    assert sample(metrics, "pacsync_hl7_messages_total", feed="pms", ack="AR") == 10
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_after_a_failed_commit_the_next_messages_are_kept(
    intake: Intake, journal: MemoryMessageJournal
) -> None:
    journal.fail_keeps = [StoreUnavailable("down")]
    (refused,) = receive(intake, adt("C1"))
    (accepted,) = receive(intake, adt("C1"))
    assert refused is not None
    assert accepted is not None
    assert (read_ack(refused).code, read_ack(accepted).code) == ("AR", "AA")
    assert journal.control_ids() == ["C1"]


def test_a_failed_commit_in_enhanced_mode_is_answered_ce(
    intake: Intake, journal: MemoryMessageJournal
) -> None:
    journal.fail_keeps = [StoreUnavailable("down")]
    (answer,) = receive(intake, adt("C1", accept="AL"))
    assert answer is not None
    assert read_ack(answer).code == "CE"


def test_an_unexpected_journal_failure_is_answered_ar_too(
    intake: Intake, journal: MemoryMessageJournal, caplog: pytest.LogCaptureFixture
) -> None:
    journal.fail_keeps = [RuntimeError("a bug in the journal")]
    with caplog.at_level(logging.ERROR, "pacsync.hl7.intake"):
        (answer,) = receive(intake, adt("C1"))
    assert answer is not None
    assert read_ack(answer).code == "AR"
    assert journal.messages == []
    assert "a bug in the journal" in caplog.text


@pytest.mark.parametrize("name", ["latin-9x", "base64", ""])
def test_a_default_encoding_that_is_no_character_set_is_refused_at_start(
    commit: GroupCommit, name: str
) -> None:
    with pytest.raises(ConfigError, match="PACSYNC_HL7_ENCODING"):
        Intake("pms", commit, default_encoding=name)


def test_a_default_encoding_is_taken_by_its_hl7_name_too(commit: GroupCommit) -> None:
    intake = Intake("pms", commit, default_encoding="8859/1")
    assert intake.decide(adt(body=b"PID|1||M\xfcller\r"), PEER).message.encoding == "iso8859-1"


def test_a_submission_larger_than_a_commit_is_kept_over_several_in_order(
    journal: MemoryMessageJournal,
) -> None:
    group = GroupCommit(journal, max_batch=10)
    intake = Intake("pms", group, metrics=Hl7Metrics())
    decisions = [intake.decide(adt(f"C{n:02d}"), PEER) for n in range(25)]

    async def main() -> list[bytes | None]:
        return await intake.receive(decisions)

    try:
        answers = asyncio.run(main())
    finally:
        group.close()
    assert [len(batch) for batch in journal.commits] == [10, 10, 5]
    assert [read_ack(a).control_id for a in answers if a] == [f"C{n:02d}" for n in range(25)]


def test_a_failed_part_of_a_large_submission_answers_all_of_it_and_the_next_goes_on(
    journal: MemoryMessageJournal,
) -> None:
    group = GroupCommit(journal, max_batch=10)
    intake = Intake("pms", group, metrics=Hl7Metrics())
    journal.fail_keeps = [None, StoreUnavailable("disk full")]

    async def main() -> tuple[list[bytes | None], list[bytes | None]]:
        large = intake.receive([intake.decide(adt(f"C{n:02d}"), PEER) for n in range(25)])
        after = intake.receive([intake.decide(adt("NEXT"), PEER)])
        return await asyncio.gather(large, after)

    try:
        large, after = asyncio.run(main())
    finally:
        group.close()
    assert {read_ack(a).code for a in large if a} == {"AR"}  # the sender sends it all again
    assert [read_ack(a).code for a in after if a] == ["AA"]
    assert journal.control_ids() == [f"C{n:02d}" for n in range(10)] + ["NEXT"]


@pytest.mark.parametrize(("control_id", "sender"), [("C\x001", "PMS|CLINIC"), ("C1", "P\x07MS|X")])
def test_a_control_character_in_msh_is_refused_with_where_it_is(
    intake: Intake, journal: MemoryMessageJournal, control_id: str, sender: str
) -> None:
    """No HL7 value holds one, and a database refuses NUL in text: kept as a rejected
    message (its payload whole), never where it could fail the commit of others."""
    (answer,) = receive(intake, adt(control_id, sender=sender))
    assert answer is not None
    ack = read_ack(answer)
    assert ack.code == "AR"
    assert "holds the control character" in answer.decode()
    (kept,) = journal.messages
    assert not kept.accepted
    assert "\x00" not in kept.sender + kept.control_id + (kept.reason or "")


def test_a_commit_is_bounded_in_bytes_as_well_as_messages(journal: MemoryMessageJournal) -> None:
    group = GroupCommit(journal, max_bytes=3 * len(adt("C00")))  # three messages' worth
    intake = Intake("pms", group, metrics=Hl7Metrics())
    decisions = [intake.decide(adt(f"C{n:02d}"), PEER) for n in range(7)]

    try:
        answers = asyncio.run(intake.receive(decisions))
    finally:
        group.close()
    assert [len(batch) for batch in journal.commits] == [3, 3, 1]
    assert [read_ack(a).control_id for a in answers if a] == [f"C{n:02d}" for n in range(7)]
