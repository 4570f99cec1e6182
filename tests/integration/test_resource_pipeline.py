"""HL7 messages routed to a pipeline: ADT messages kept by the intake and processed by
``pacsync hl7 process`` into FHIR resources, which a pipeline reading ``pacsync:store``
maps, checks and writes into a PostgreSQL table with ``pacsync run``; a later A08
changes one patient and the next run updates only that row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from clinical_messages import incoming
from pacsync.db.messages import MessageStore
from pacsync.db.store import open_store

from .assessment import run_summary

pytestmark = pytest.mark.integration

ADT = (
    "MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20261123101500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
    "EVN|{event}|20261123101500\r"
    "PID|1||{mrn}^^^HOSP^MR||{family}^{given}||{born}|{sex}|||1 Main St^^Kennewick^WA^99336\r"
    "PV1|1|O|CLINIC1^^^||||1234^Welby^Marcus|||MED||||||||V{control}\r"
)

PIPELINE = """
version: 1
name: hl7-patients
connections:
  messages: {url: "pacsync:store"}
  warehouse: {url: "%(target)s"}
source: {connection: messages}
destination: {connection: warehouse}
entities:
  patients:
    source:
      resources: Patient
      columns: {id: id, mrn: identifier.0.value, family: name.0.family,
                given: name.0.given.0, born: birthDate, sex: gender, city: address.0.city}
    target: {table: patients}
    fields:
      patient_id: {from: id}
      mrn: {from: mrn, length: 20}
      family: {from: family, transforms: [upper]}
      given: {from: given}
      born: {from: born, type: date}
      sex: {from: sex}
      city: {from: city}
    validate:
      - {field: mrn, rule: required}
      - {field: sex, rule: enum, values: [female, male, other, unknown]}
"""


def _message(control: str, mrn: str, family: str, *, event: str = "A04", born: str = "19700101"):
    text = ADT.format(
        event=event, control=control, mrn=mrn, family=family, given="Ann", born=born, sex="F"
    )
    return incoming(control, payload=text.encode())


def _keep_and_process(pacsync: Any, messages: list[Any]) -> None:
    store_url = f"sqlite:///{Path(pacsync.env['PACSYNC_HOME']) / 'pacsync.db'}"
    engine = open_store(store_url)
    try:
        MessageStore(engine).keep(messages)
    finally:
        engine.dispose()
    done = pacsync("hl7", "process")
    assert done.returncode == 0, done.stdout + done.stderr


def _patients(url: str) -> dict[str, tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT mrn, family, given, born, sex, city FROM patients"
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_processed_messages_reach_a_warehouse_table_through_a_pipeline(
    pacsync: Any, pg_url: str, tmp_path: Path
) -> None:
    (Path(pacsync.env["PACSYNC_HOME"])).mkdir(parents=True, exist_ok=True)
    pipeline = tmp_path / "patients.yaml"
    pipeline.write_text(PIPELINE % {"target": pg_url})
    _keep_and_process(
        pacsync,
        [_message(f"C{n}", f"MRN{n}", f"family{n}") for n in range(1, 4)],
    )

    checked = pacsync("check", pipeline)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = pacsync("run", pipeline, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    status, counts = run_summary(done.stdout)
    assert status == "succeeded"
    assert (counts["patients"]["read"], counts["patients"]["inserted"]) == (3, 3)
    assert _patients(pg_url) == {
        f"MRN{n}": (f"FAMILY{n}", "Ann", dt.date(1970, 1, 1), "female", "Kennewick")
        for n in range(1, 4)
    }

    # an update of one patient: only that row changes
    _keep_and_process(pacsync, [_message("C9", "MRN2", "married", event="A08")])
    again = pacsync("run", pipeline, "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr
    _, counts = run_summary(again.stdout)
    assert counts["patients"]["mode"] == "hash_diff"
    assert (counts["patients"]["updated"], counts["patients"]["unchanged"]) == (1, 2)
    assert _patients(pg_url)["MRN2"][0] == "MARRIED"


def test_a_resource_entity_is_refused_where_it_cannot_be_read(pacsync: Any, tmp_path: Path) -> None:
    pipeline = tmp_path / "wrong.yaml"
    pipeline.write_text(
        (PIPELINE % {"target": "sqlite:///x.db"}).replace("pacsync:store", "sqlite:///y.db")
    )
    done = pacsync("check", pipeline)
    assert done.returncode != 0
    assert "PACS-101" in done.stdout + done.stderr
    assert "reads resources but source connection 'messages' is a database" in (
        done.stdout + done.stderr
    ).replace("\n", " ")
