"""Records sent as HL7 messages: the template, escaping, stable control ids, and record
state committed only after the batch's ACKs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pacsync.config import load_pipeline
from pacsync.connectors.hl7.destination import (
    MessageTemplate,
    MllpDestination,
    control_id,
    hl7_value,
)
from pacsync.connectors.memory.clinical import ScriptedSender
from pacsync.db.record_states import StoreRecordStates
from pacsync.db.store import open_store
from pacsync.domain.checkpoint import Checkpoint
from pacsync.errors import ConfigError, MllpPeerUnavailable, PacsyncError
from pacsync.ports import WriteBatch

PIPELINE = """
version: 1
name: outbound
connections:
  pms: {url: "sqlite:///pms.db"}
  ris: {url: "mllp://127.0.0.1:2575"}
source: {connection: pms}
destination: {connection: ris}
entities:
  patients:
    source: {table: patient, key: [id]}
    fields:
      id: {from: id, type: integer}
      family: {from: last}
      birth_date: {from: dob, type: date}
    target:
      %(target)s
"""
MESSAGE = (
    "message: |\n"
    "        MSH|^~\\\\&|PACSYNC|X|RIS|Y|{now}||ADT^A08^ADT_A01|{control_id}|P|2.5.1\n"
    "        PID|1||{id}^^^PMS^MR||{family}||{birth_date}"
)


def _spec(tmp_path: Path, target: str = MESSAGE) -> Any:
    path = tmp_path / "outbound.yaml"
    path.write_text(PIPELINE % {"target": target})
    return load_pipeline(path, environ={})


def test_values_are_escaped_and_dates_written_as_hl7_dates() -> None:
    assert hl7_value("Doe|Smith^Jr~&\\x") == "Doe\\F\\Smith\\S\\Jr\\R\\\\T\\\\E\\x"
    assert hl7_value(dt.date(1970, 1, 2)) == "19700102"
    assert hl7_value(dt.datetime(2026, 11, 23, 10, 15, 30)) == "20261123101530"
    assert hl7_value(Decimal("12.50")) == "12.50"
    assert hl7_value(None) == ""
    assert hl7_value("two\nlines") == "two lines"


def test_a_control_id_is_the_same_for_the_same_record_version_only() -> None:
    first = control_id("outbound", "patients", (7,), "fp1")
    assert first == control_id("outbound", "patients", (7,), "fp1")
    assert len(first) == 20
    assert first != control_id("outbound", "patients", (7,), "fp2")
    assert first != control_id("outbound", "patients", (8,), "fp1")


def test_a_template_naming_an_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\{nickname\}"):
        MessageTemplate("patients", "MSH|^~\\&|{nickname}", ["id"])


def test_a_pipeline_sending_to_mllp_needs_a_message_per_entity(tmp_path: Path) -> None:
    with pytest.raises(PacsyncError, match=r"needs target\.message"):
        _spec(tmp_path, target="table: patients")
    spec = _spec(tmp_path)
    assert spec.connections["ris"].mllp == ("127.0.0.1", 2575)


def _destination(tmp_path: Path, sender: ScriptedSender) -> MllpDestination:
    states = StoreRecordStates(open_store(f"sqlite:///{tmp_path / 'store.db'}"))
    return MllpDestination(_spec(tmp_path), sender, states, key_positions=lambda e: [0])


def _checkpoint(after: int) -> Checkpoint:
    return Checkpoint(pipeline="outbound", entity="patients", mapping_version="v1",
                      phase="full", after_key=(after,))  # fmt: skip


def test_a_batch_is_sent_in_order_then_recorded_with_its_checkpoint(tmp_path: Path) -> None:
    sender = ScriptedSender()
    destination = _destination(tmp_path, sender)
    rows = [(1, "Doe", dt.date(1970, 1, 2)), (2, "O|Brien", None)]
    destination.write(
        "patients", WriteBatch(rows=rows, fingerprints=["a", "b"], checkpoint=_checkpoint(2))
    )
    first, second = (payload.decode() for payload in sender.received)
    assert first.split("\r")[1] == "PID|1||1^^^PMS^MR||Doe||19700102"
    assert second.split("\r")[1] == "PID|1||2^^^PMS^MR||O\\F\\Brien||"
    assert first.split("|")[9] == control_id("outbound", "patients", (1,), "a")
    assert destination.fingerprints("patients") == {(1,): "a", (2,): "b"}
    loaded = destination.load_checkpoint("patients")
    assert loaded is not None
    assert loaded.after_key == (2,)


def test_a_receiver_lost_mid_batch_records_nothing_of_it(tmp_path: Path) -> None:
    sender = ScriptedSender(["AA", MllpPeerUnavailable("connection refused")])
    destination = _destination(tmp_path, sender)
    rows = [(1, "Doe", None), (2, "Roe", None)]
    with pytest.raises(MllpPeerUnavailable):
        destination.write(
            "patients", WriteBatch(rows=rows, fingerprints=["a", "b"], checkpoint=_checkpoint(2))
        )
    assert destination.is_empty("patients")
    assert destination.load_checkpoint("patients") is None
