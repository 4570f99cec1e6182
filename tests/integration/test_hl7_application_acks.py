"""Enhanced acknowledgement mode end to end: each message is answered CA when kept, and
once processed the application ACK its MSH-16 asks for (AL always, ER on an error, SU
on success, NE never) is sent over MLLP to a route of ``acks`` (another pacsync
listener here, which answers each with CA): AA, or AE naming the field at fault; a
message fixed and processed again gets a fresh AA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from pacsync.connectors.hl7.sender import read_ack
from pacsync.db.messages import MessageStore

from .mllp_peers import adt, start_listener

pytestmark = pytest.mark.integration

BROKEN_PID = b"PID|1||43^^^HOSP^MR||Roe^Rita||1970-13-45|F\r"


def message(control_id: str, application: str, *, broken: bool = False) -> bytes:
    good = adt(control_id, extra=f"|||AL|{application}")
    if not broken:
        return good
    head, _, _ = good.partition(b"PID|")
    return head + BROKEN_PID


def received(home: Path) -> list[tuple[str, str, bytes]]:
    """What the ACK receiver kept, in arrival order: kind, MSA-1 and MSA-2, the payload."""
    engine = create_engine(f"sqlite:///{home / 'pacsync.db'}")
    try:
        journal = MessageStore(engine)
        rows = list(reversed(journal.search(limit=100)))
        out = []
        for row in rows:
            kept = journal.payload(row.id)
            assert kept is not None
            out.append((row.kind, row.control_id, kept[0]))
        return out
    finally:
        engine.dispose()


def test_msh_16_application_acks_are_sent_to_the_acks_route(pacsync: Any, tmp_path: Path) -> None:
    back_home = tmp_path / "ack-receiver"
    receiver = start_listener(
        pacsync, {"PACSYNC_HOME": str(back_home), "PACSYNC_HL7_ACCEPT": "ACK^*"}
    )
    listener = start_listener(pacsync)
    try:
        feed = listener.env.get("PACSYNC_HL7_FEED", "mllp")
        url = f"mllp://127.0.0.1:{receiver.port}"
        added = pacsync("hl7", "route", "add", "back", url, "--acks", "--feed", feed)
        assert added.returncode == 0, added.stderr
        assert "application ACKs of every type" in added.stdout
        files = []
        for number, (control_id, application, broken) in enumerate(
            [
                ("G1", "AL", False),  # AL: AA
                ("B1", "ER", True),  # ER and an error: AE
                ("G2", "ER", False),  # ER and no error: nothing
                ("G3", "SU", False),  # SU and success: AA
                ("B2", "SU", True),  # SU and an error: nothing
                ("N1", "NE", False),  # never
            ]
        ):
            path = tmp_path / f"{number}.hl7"
            path.write_bytes(message(control_id, application, broken=broken))
            files.append(path)
        sent = pacsync("hl7", "send", f"127.0.0.1:{listener.port}", *files)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.count("CA ") == 6, sent.stdout  # the commit ACKs
        processed = pacsync("hl7", "process")
        assert processed.returncode == 0, processed.stdout + processed.stderr
        delivered = pacsync("hl7", "deliver", "back")
        assert delivered.returncode == 0, delivered.stdout + delivered.stderr

        acks = received(back_home)
        assert [(kind, read_ack(p).code, read_ack(p).control_id) for kind, _, p in acks] == [
            ("ACK^A08", "AA", "G1"),
            ("ACK^A08", "AE", "B1"),
            ("ACK^A08", "AA", "G3"),
        ]
        error = acks[1][2].decode().split("\r")[2].split("|")
        assert error[2] == "PID^1^7^1^1"  # ERR-2: where (PID-7.1)
        assert error[3].startswith("102^")  # ERR-3: data type error (HL7 table 0357)
        assert error[8].startswith("PACS-601: PID-7")
        listed = pacsync("hl7", "route", "list")
        assert "ACKs of any" in listed.stdout
        assert " 3 " in listed.stdout  # sent

        # B1 fixed by a mapping change is processed again: a fresh ACK, AE again here
        again = pacsync("hl7", "reprocess")
        assert again.returncode == 0, again.stdout + again.stderr
        assert pacsync("hl7", "process").returncode == 0
        assert pacsync("hl7", "deliver", "back").returncode == 0
        acks = received(back_home)
        assert [read_ack(p).control_id for _, _, p in acks] == ["G1", "B1", "G3", "B1"]
        assert len({control_id for _, control_id, _ in acks}) == 4  # each ACK its own MSH-10
    finally:
        output = listener.stop() + receiver.stop()
    assert "Traceback" not in output
