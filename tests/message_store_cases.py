"""The message journal and log (``MessageStore``), the same cases on SQLite and PostgreSQL.

A test module subclasses :class:`MessageStoreCases` and gives a ``store`` fixture.
Importable by name from any test folder, like ``availability``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from pacsync.db.dead_letters import DeadLetterStore
from pacsync.db.messages import MessageStore
from pacsync.domain.messaging import Incoming, Kept, MessageState
from pacsync.errors import PacsyncError
from pacsync.ports import Settled

T0 = dt.datetime(2026, 3, 1, 8, 0, 0, 123456)


def incoming(
    control_id: str,
    *,
    sender: str = "PMS|CLINIC",
    kind: str = "ADT^A01",
    feed: str = "mllp",
    accepted: bool = True,
    minutes: int = 0,
    payload: bytes | None = None,
    reason: str | None = None,
) -> Incoming:
    body = payload if payload is not None else f"MSH|^~\\&|{control_id}\rPID|1\r".encode()
    return Incoming(
        feed=feed,
        sender=sender,
        control_id=control_id,
        kind=kind,
        version="2.5.1",
        payload=body,
        encoding="utf-8",
        peer="127.0.0.1:5000",
        received_at=T0 + dt.timedelta(minutes=minutes),
        ack_code="AA" if accepted else "AR",
        accepted=accepted,
        reason=reason if reason is not None else (None if accepted else "not accepted"),
    )


def ids(kept: Sequence[Kept]) -> list[int]:
    return [k.id for k in kept]


class MessageStoreCases:
    # -- keeping ----------------------------------------------------------------------------------

    def test_new_messages_are_kept_with_their_ids_in_order(self, store: MessageStore) -> None:
        kept = store.keep([incoming("C1"), incoming("C2"), incoming("C3")])
        assert [k.duplicate for k in kept] == [False, False, False]
        assert len(set(ids(kept))) == 3
        assert ids(kept) == sorted(ids(kept))
        assert store.payload(kept[1].id) == (b"MSH|^~\\&|C2\rPID|1\r", "utf-8")
        row = store.get(kept[0].id)
        assert row is not None
        assert (row.control_id, row.sender, row.kind, row.state) == (
            "C1",
            "PMS|CLINIC",
            "ADT^A01",
            MessageState.RECEIVED,
        )
        assert (row.ack_code, row.accepted, row.reason, row.attempts) == ("AA", True, None, 0)
        assert row.received_at == T0
        assert row.size == len(b"MSH|^~\\&|C2\rPID|1\r")

    def test_nothing_to_keep_is_nothing_kept(self, store: MessageStore) -> None:
        assert store.keep([]) == []
        assert store.search() == []

    def test_a_duplicate_in_one_batch_is_kept_once_and_answered_from_the_first(
        self, store: MessageStore
    ) -> None:
        kept = store.keep([incoming("C1"), incoming("C2"), incoming("C1"), incoming("C1")])
        assert kept[2] == Kept(kept[0].id, True)
        assert kept[3] == Kept(kept[0].id, True)
        assert [k.duplicate for k in kept[:2]] == [False, False]
        assert sorted(r.control_id for r in store.search()) == ["C1", "C2"]

    def test_a_duplicate_in_a_later_batch_is_answered_from_the_first(
        self, store: MessageStore
    ) -> None:
        (first,) = store.keep([incoming("C1")])
        again = store.keep([incoming("C2"), incoming("C1", minutes=5)])
        assert again[1] == Kept(first.id, True)
        assert again[0].duplicate is False
        assert [r.control_id for r in store.search()] == ["C2", "C1"]
        assert store.search(control_id="C1")[0].received_at == T0  # the first copy stays

    def test_the_same_control_id_from_another_sender_is_another_message(
        self, store: MessageStore
    ) -> None:
        kept = store.keep([incoming("C1"), incoming("C1", sender="LAB|CLINIC")])
        assert [k.duplicate for k in kept] == [False, False]
        assert kept[0].id != kept[1].id

    def test_rejected_messages_are_logged_every_time_and_never_pending(
        self, store: MessageStore
    ) -> None:
        first = store.keep([incoming("C1", accepted=False, reason="version 9 refused")])
        second = store.keep([incoming("C1", accepted=False), incoming("C1")])
        assert [k.duplicate for k in first + second] == [False, False, False]
        rows = store.search(control_id="C1")
        assert sorted((r.state, r.ack_code) for r in rows) == [
            ("received", "AA"),
            ("rejected", "AR"),
            ("rejected", "AR"),
        ]
        assert {r.reason for r in rows if not r.accepted} == {"version 9 refused", "not accepted"}
        assert [p.id for p in store.pending(None, 10)] == [second[1].id]

    def test_a_batch_of_a_thousand_with_duplicates_and_rejections(
        self, store: MessageStore
    ) -> None:
        store.keep([incoming(f"C{n}") for n in range(0, 1000, 2)])
        batch = [incoming(f"C{n}", accepted=n % 7 != 0) for n in range(1000)]
        kept = store.keep(batch)
        duplicate = {m.control_id for m, k in zip(batch, kept, strict=True) if k.duplicate}
        assert duplicate == {f"C{n}" for n in range(0, 1000, 2) if n % 7}
        assert len(store.pending(None, 5000)) == len({n for n in range(1000) if n % 2 == 0}) + len(
            [n for n in range(1000) if n % 2 and n % 7]
        )
        assert store.counts()["mllp"]["rejected"] == len(range(0, 1000, 7))

    def test_long_values_are_cut_to_their_columns(self, store: MessageStore) -> None:
        (kept,) = store.keep(
            [incoming("C" * 300, sender="S" * 500, kind="K" * 60, reason="r" * 900, accepted=False)]
        )
        row = store.get(kept.id)
        assert row is not None
        assert (len(row.control_id), len(row.sender), len(row.kind)) == (199, 400, 40)
        assert row.reason is not None
        assert len(row.reason) == 500

    def test_binary_payloads_are_kept_byte_for_byte(self, store: MessageStore) -> None:
        payload = bytes(range(256)) * 40
        (kept,) = store.keep([incoming("C1", payload=payload)])
        assert store.payload(kept.id) == (payload, "utf-8")
        assert store.payload(kept.id + 1000) is None

    def test_keeping_goes_on_after_a_failed_commit(self, store: MessageStore) -> None:
        store.keep([incoming("C1")])
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE hl7_messages RENAME TO hl7_messages_away"))
        try:
            with pytest.raises(PacsyncError):
                store.keep([incoming("C2")])
        finally:
            with store.engine.begin() as conn:
                conn.execute(text("ALTER TABLE hl7_messages_away RENAME TO hl7_messages"))
        kept = store.keep([incoming("C2"), incoming("C1")])
        assert [k.duplicate for k in kept] == [False, True]
        assert sorted(r.control_id for r in store.search()) == ["C1", "C2"]

    def test_concurrent_keeps_of_the_same_messages_keep_each_once(
        self, store: MessageStore
    ) -> None:
        other = MessageStore(store.engine)  # another listener on the same store
        batch = [incoming(f"C{n}") for n in range(200)]
        try:
            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda s: s.keep(batch), [store, other]))
        finally:
            other.close()
        assert len(store.search(limit=1000)) == 200
        for index in range(200):
            a, b = results[0][index], results[1][index]
            assert a.id == b.id
            assert sorted([a.duplicate, b.duplicate]) == [False, True]

    def test_close_then_keep_again(self, store: MessageStore) -> None:
        store.keep([incoming("C1")])
        store.close()
        assert store.keep([incoming("C1")])[0].duplicate

    # -- the log ----------------------------------------------------------------------------------

    def _log(self, store: MessageStore) -> dict[str, int]:
        kept = store.keep(
            [
                incoming("A1", kind="ADT^A01", minutes=0),
                incoming("A8", kind="ADT^A08", minutes=10),
                incoming("S12", kind="SIU^S12", minutes=20, feed="scheduling"),
                incoming("O1", kind="ORU^R01", minutes=30),
                incoming("X1", kind="ORM^O01", minutes=40, accepted=False),
            ]
        )
        return {m: k.id for m, k in zip(["A1", "A8", "S12", "O1", "X1"], kept, strict=True)}

    def test_the_log_is_newest_first_without_payloads(self, store: MessageStore) -> None:
        self._log(store)
        rows = store.search()
        assert [r.control_id for r in rows] == ["X1", "O1", "S12", "A8", "A1"]
        assert not hasattr(rows[0], "payload")

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"kind": "ADT"}, ["A8", "A1"]),
            ({"kind": "ADT^A08"}, ["A8"]),
            ({"kind": "SIU^*"}, ["S12"]),
            ({"kind": "ORU^R01"}, ["O1"]),
            ({"control_id": "O1"}, ["O1"]),
            ({"state": "rejected"}, ["X1"]),
            ({"state": "received"}, ["O1", "S12", "A8", "A1"]),
            ({"feed": "scheduling"}, ["S12"]),
            ({"since": T0 + dt.timedelta(minutes=10)}, ["X1", "O1", "S12", "A8"]),
            ({"until": T0 + dt.timedelta(minutes=10)}, ["A1"]),
            (
                {"since": T0 + dt.timedelta(minutes=5), "until": T0 + dt.timedelta(minutes=25)},
                ["S12", "A8"],
            ),
            ({"limit": 2}, ["X1", "O1"]),
            ({"limit": 2, "offset": 2}, ["S12", "A8"]),
            ({"kind": "ADT", "feed": "scheduling"}, []),
        ],
    )
    def test_the_log_is_searched_by_type_control_id_state_feed_and_time(
        self, store: MessageStore, filters: dict[str, object], expected: list[str]
    ) -> None:
        self._log(store)
        assert [r.control_id for r in store.search(**filters)] == expected  # type: ignore[arg-type]

    def test_the_log_is_searched_by_patient_once_processed(self, store: MessageStore) -> None:
        kept = self._log(store)
        store.settle([Settled(kept["A8"], "884512")], T0)
        assert [r.control_id for r in store.search(patient_id="884512")] == ["A8"]
        assert store.search(patient_id="nobody") == []

    def test_counts_per_feed_by_state_and_answer(self, store: MessageStore) -> None:
        kept = self._log(store)
        store.keep([incoming("A1")])  # a duplicate is not counted again
        store.settle([Settled(kept["A1"], "1"), Settled(kept["O1"], None, {"code": "X"})], T0)
        assert store.counts() == {
            "mllp": {"received": 1, "processed": 1, "failed": 1, "rejected": 1, "ack_AA": 3,
                     "ack_AR": 1},
            "scheduling": {"received": 1, "ack_AA": 1},
        }  # fmt: skip

    def test_a_message_without_an_answer_is_counted_as_none(self, store: MessageStore) -> None:
        message = incoming("N1")
        store.keep([Incoming(**{**_fields(message), "ack_code": ""})])
        assert store.counts()["mllp"]["ack_none"] == 1

    # -- processing -----------------------------------------------------------------------------

    def test_pending_is_the_oldest_received_first_per_feed_and_limited(
        self, store: MessageStore
    ) -> None:
        kept = self._log(store)
        assert [p.id for p in store.pending(None, 10)] == [
            kept["A1"],
            kept["A8"],
            kept["S12"],
            kept["O1"],
        ]
        assert [p.id for p in store.pending("scheduling", 10)] == [kept["S12"]]
        assert [p.id for p in store.pending(None, 2)] == [kept["A1"], kept["A8"]]
        first = store.pending(None, 1)[0]
        assert (first.payload, first.encoding) == (b"MSH|^~\\&|A1\rPID|1\r", "utf-8")

    def test_settled_messages_leave_pending_failed_ones_keep_why(self, store: MessageStore) -> None:
        kept = self._log(store)
        later = T0 + dt.timedelta(hours=1)
        store.settle(
            [
                Settled(kept["A1"], "884512"),
                Settled(kept["A8"], "P" * 150, {"code": "PACS-601", "message": "PID-3 missing"}),
            ],
            later,
        )
        assert [p.id for p in store.pending(None, 10)] == [kept["S12"], kept["O1"]]
        done, failed = store.get(kept["A1"]), store.get(kept["A8"])
        assert done is not None
        assert failed is not None
        assert (done.state, done.patient_id, done.processed_at, done.attempts) == (
            "processed",
            "884512",
            later,
            1,
        )
        assert done.error is None
        assert (failed.state, failed.error) == (
            "failed",
            {"code": "PACS-601", "message": "PID-3 missing"},
        )
        assert failed.patient_id == "P" * 100
        store.settle([], later)  # nothing to settle: nothing changes
        assert store.get(kept["S12"]) is not None

    def test_reprocess_puts_failed_messages_back_in_line(self, store: MessageStore) -> None:
        kept = self._log(store)
        store.settle(
            [
                Settled(kept["A1"], None, {"code": "E"}),
                Settled(kept["A8"], None, {"code": "E"}),
                Settled(kept["S12"], None, {"code": "E"}),
                Settled(kept["O1"], "1"),
            ],
            T0,
        )
        assert store.pending(None, 10) == []
        assert store.reprocess([kept["A8"]]) == 1
        assert [p.id for p in store.pending(None, 10)] == [kept["A8"]]
        assert store.reprocess(feed="scheduling") == 1
        assert [p.id for p in store.pending(None, 10)] == [kept["A8"], kept["S12"]]
        assert store.reprocess() == 1  # the last failed one; processed ones stay processed
        assert [p.id for p in store.pending(None, 10)] == [kept["A1"], kept["A8"], kept["S12"]]
        assert store.reprocess() == 0
        store.settle([Settled(kept["A8"], "2")], T0)
        row = store.get(kept["A8"])
        assert row is not None
        assert (row.state, row.attempts, row.error) == ("processed", 2, None)


    def test_a_nul_in_a_value_cannot_fail_the_commit_of_the_others(
        self, store: MessageStore
    ) -> None:
        rejected = incoming("R1", accepted=False, reason="version '2.5\x00' is not accepted")
        kept = store.keep([incoming("GOOD"), incoming("C\x001"), rejected])
        assert [k.duplicate for k in kept] == [False, False, False]
        logged = {m.control_id: m for m in store.search()}
        assert set(logged) == {"GOOD", "C\ufffd1", "R1"}
        assert logged["R1"].reason == "version '2.5\ufffd' is not accepted"
        again = store.keep([incoming("C\x001")])  # the same message again: kept once
        assert again[0] == Kept(kept[1].id, True)

    # -- failures as dead letters -------------------------------------------------------------

    def test_a_failed_message_is_parked_as_a_dead_letter_with_its_values_masked(
        self, store: MessageStore
    ) -> None:
        kept = self._log(store)
        why = {"code": "PACS-601", "message": "PID-7 '19700x01' is not a date", "location": "PID-7"}
        store.settle([Settled(kept["A8"], "884512", why), Settled(kept["A1"], "1")], T0)
        (letter,) = DeadLetterStore(store.engine).find(pipeline="hl7:mllp")
        assert (letter["kind"], letter["entity"], letter["record_key"]) == (
            "hl7",
            "ADT^A08",
            str(kept["A8"]),
        )
        assert (letter["error_code"], letter["field"], letter["status"]) == (
            "PACS-601",
            "PID-7",
            "open",
        )
        assert letter["message"] == "PID-7 '***' is not a date"  # the log keeps the value
        assert letter["payload"]["control_id"] == "A8"
        assert letter["payload"]["message_id"] == kept["A8"]

    def test_a_message_failing_again_reopens_its_letter_and_processed_resolves_it(
        self, store: MessageStore
    ) -> None:
        kept = self._log(store)
        letters = DeadLetterStore(store.engine)
        first = {"code": "PACS-601", "message": "PID-3 missing", "location": "PID-3"}
        other = {"code": "PACS-601", "message": "PV1-2 unknown", "location": "PV1-2"}
        store.settle([Settled(kept["A1"], None, first)], T0)
        store.reprocess([kept["A1"]])
        store.settle([Settled(kept["A1"], None, first)], T0)
        (again,) = letters.find(pipeline="hl7:mllp", status=None)
        assert (again["status"], again["attempts"]) == ("open", 2)
        store.reprocess([kept["A1"]])
        store.settle([Settled(kept["A1"], None, other)], T0)
        states = {d["field"]: d["status"] for d in letters.find(pipeline="hl7:mllp", status=None)}
        assert states == {"PID-3": "superseded", "PV1-2": "open"}
        store.reprocess([kept["A1"]])
        store.settle([Settled(kept["A1"], "884512")], T0)
        states = {d["field"]: d["status"] for d in letters.find(pipeline="hl7:mllp", status=None)}
        assert states == {"PID-3": "superseded", "PV1-2": "resolved"}
        assert letters.count(status="open") == 0


def _fields(message: Incoming) -> dict[str, object]:
    return {name: getattr(message, name) for name in Incoming.__dataclass_fields__}
