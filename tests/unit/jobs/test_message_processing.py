"""Processing kept messages in batches: parsed ones written on, unreadable ones failed
with their code, nothing settled when the sink fails."""

from __future__ import annotations

import pytest

from clinical_messages import adt
from pacsync.connectors.hl7.records import parse_message, patient_of
from pacsync.connectors.memory.clinical import MemoryInbox, MemorySink
from pacsync.errors import StoreUnavailable
from pacsync.jobs.messages import process_pending

BROKEN_DATE = adt("C9").replace(b"19700101", b"1970-01-01")


def test_every_message_is_processed_in_batches_and_in_order() -> None:
    inbox = MemoryInbox([adt(f"C{i}", patient=f"P{i}") for i in range(1, 8)])
    sink = MemorySink()
    counts = process_pending(inbox, parse_message, sink, batch=3)
    assert (counts.processed, counts.failed, counts.batches) == (7, 0, 3)
    assert [len(batch) for batch in sink.applied] == [3, 3, 1]
    written = [parsed.control_id for batch in sink.applied for _, parsed in batch]
    assert written == [f"C{i}" for i in range(1, 8)]
    assert inbox.settled[1].patient_id == "P1"
    assert all(s.error is None for s in inbox.settled.values())


def test_an_unreadable_message_fails_with_its_code_and_the_batch_goes_on() -> None:
    inbox = MemoryInbox([adt("C1"), BROKEN_DATE, b"NOT HL7 AT ALL", adt("C2")])
    sink = MemorySink()
    counts = process_pending(inbox, parse_message, sink)
    assert (counts.processed, counts.failed) == (2, 2)
    assert [parsed.control_id for _, parsed in sink.applied[0]] == ["C1", "C2"]
    broken = inbox.settled[2].error
    assert broken is not None
    assert broken["code"] == "PACS-601"
    assert "PID-7" in broken["message"]
    assert broken["location"] == "PID-7.1"  # where, for an application ACK's ERR-2
    assert inbox.settled[3].error is not None
    assert inbox.settled[2].patient_id is None  # nothing told how to find the patient


def test_a_message_that_fails_is_still_found_by_its_patient() -> None:
    broken = adt("C9", patient="P77").replace(b"19700101", b"1970-01-01")
    inbox = MemoryInbox([broken, b"NOT HL7 AT ALL"])
    process_pending(inbox, parse_message, MemorySink(), identify=patient_of)
    assert inbox.settled[1].error is not None
    assert inbox.settled[1].patient_id == "P77"
    assert inbox.settled[2].patient_id is None


def test_bytes_not_in_the_messages_character_set_fail_as_unreadable() -> None:
    inbox = MemoryInbox([adt("C1").replace(b"Doe", b"D\xf6e")])
    counts = process_pending(inbox, parse_message, MemorySink())
    assert counts.failed == 1
    error = inbox.settled[1].error
    assert error is not None
    assert "utf-8" in error["message"]


def test_a_sink_failure_settles_nothing_of_its_batch() -> None:
    inbox = MemoryInbox([adt("C1"), adt("C2")])
    sink = MemorySink()
    sink.fail_with = StoreUnavailable("store down")
    with pytest.raises(StoreUnavailable):
        process_pending(inbox, parse_message, sink)
    assert inbox.settled == {}
    counts = process_pending(inbox, parse_message, sink)  # the next run takes them all
    assert counts.processed == 2


def test_a_stop_request_ends_between_batches() -> None:
    inbox = MemoryInbox([adt(f"C{i}") for i in range(5)])
    seen: list[int] = []

    def stop() -> bool:
        return len(seen) >= 1

    counts = process_pending(
        inbox, parse_message, MemorySink(), batch=2, should_stop=stop,
        progress=lambda c: seen.append(c.processed),
    )  # fmt: skip
    assert counts.processed == 2
    assert len(inbox.pending(None, 10)) == 3
