"""``/messages``: the HL7 message log over the API, de-identified for viewers."""

from __future__ import annotations

import datetime as dt

from clinical_messages import adt, incoming
from pacsync.db.messages import MessageStore
from pacsync.domain.access import Role
from pacsync.ports import Settled

from .conftest import Api, problem

QUOTING = "PID-7.1: '19700132' is not a real date"  # an error quoting the message


def _journal(api: Api) -> MessageStore:
    journal = MessageStore(api.store.engine)
    journal.keep([incoming("C1"), incoming("C2"), incoming("C3", accepted=False)])
    first, second = journal.pending(None, 10)
    journal.settle(
        [
            Settled(first.id, "P12345678"),
            Settled(second.id, None, {"code": "PACS-601", "message": QUOTING}),
        ],
        dt.datetime(2026, 11, 23, 11, 0),
    )
    return journal


def test_operators_see_the_log_and_viewers_see_it_de_identified(api: Api) -> None:
    _journal(api)
    seen = api.get("/messages", as_=Role.OPERATOR).json()["items"]
    assert [(m["control_id"], m["state"], m["ack"]) for m in seen] == [
        ("C3", "rejected", "AR"),
        ("C2", "failed", "AA"),
        ("C1", "processed", "AA"),
    ]
    assert seen[2]["patient_id"] == "P12345678"
    assert seen[1]["error"]["code"] == "PACS-601"
    assert seen[1]["error"]["message"] == QUOTING
    masked = api.get("/messages", as_=Role.VIEWER).json()["items"]
    assert masked[2]["patient_id"] == "*******78"
    assert masked[1]["error"] == {
        "code": "PACS-601",
        "message": "PID-7.1: '***' is not a real date",
    }
    failed_id = seen[1]["id"]
    one = api.get(f"/messages/{failed_id}", as_=Role.VIEWER).json()
    assert "19700132" not in str(one)


def test_filters_by_type_state_control_id_and_patient(api: Api) -> None:
    _journal(api)

    def ids(**params: str) -> list[str]:
        found = api.get("/messages", params=params, as_=Role.OPERATOR).json()["items"]
        return [m["control_id"] for m in found]

    assert ids(status="failed") == ["C2"]
    assert ids(control_id="C1") == ["C1"]
    assert ids(patient_id="P12345678") == ["C1"]
    assert ids(type="ADT") == ["C3", "C2", "C1"]
    assert ids(type="SIU") == []
    assert ids(since="2027-01-01T00:00:00Z") == []


def test_a_viewer_may_not_search_by_patient(api: Api) -> None:
    _journal(api)
    response = api.get("/messages", params={"patient_id": "P12345678"}, as_=Role.VIEWER)
    problem(response, 400, "PACS-105")


def test_one_message_is_shown_with_its_identity_segments_masked_for_viewers(api: Api) -> None:
    journal = _journal(api)
    first_id = journal.search(control_id="C1")[0].id
    whole = api.get(f"/messages/{first_id}", as_=Role.OPERATOR).json()
    assert whole["text"] == adt("C1").decode().rstrip("\r").replace("\r", "\n")
    masked = api.get(f"/messages/{first_id}", as_=Role.VIEWER).json()["text"].split("\n")
    pid = next(line for line in masked if line.startswith("PID"))
    for identifying in ("Doe", "P100", "19700101", "Main St"):
        assert identifying not in pid
    assert pid.startswith("PID|1||***||***")
    assert next(line for line in masked if line.startswith("PV1")).startswith("PV1|1|I|WARD1")
    problem(api.get("/messages/999", as_=Role.VIEWER), 404, "PACS-104")


def test_reprocessing_failed_messages_needs_an_operator_and_is_audited(api: Api) -> None:
    journal = _journal(api)
    problem(api.post("/messages/reprocess", json={}, as_=Role.VIEWER), 403, "PACS-002")
    done = api.post("/messages/reprocess", json={}, as_=Role.OPERATOR)
    assert done.status_code == 200, done.text
    assert done.json() == {"requeued": 1}
    (again,) = journal.pending(None, 10)
    assert again.id == journal.search(control_id="C2")[0].id
    (entry,) = api.audit("messages.reprocess")[:1]
    assert entry["outcome"] == "ok"
