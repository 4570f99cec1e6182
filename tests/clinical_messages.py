"""Messages as the intake keeps them, for tests of what comes after it."""

from __future__ import annotations

import datetime as dt

from pacsync.domain.messaging import Incoming

ADT_A01 = (
    "MSH|^~\\&|PMS|CLINIC|PACSYNC|HOSP|20261123101500||ADT^A01^ADT_A01|{control}|P|2.5.1\r"
    "EVN|A01|20261123101500\r"
    "PID|1||{patient}^^^HOSP^MR||Doe^John||19700101|M|||1 Main St^^Kennewick^WA^99336\r"
    "PV1|1|I|WARD1^101^A||||1234^Welby^Marcus|||MED||||||||V{control}\r"
)


def adt(control: str, patient: str = "P100") -> bytes:
    return ADT_A01.format(control=control, patient=patient).encode()


def incoming(
    control: str,
    *,
    accepted: bool = True,
    payload: bytes | None = None,
    feed: str = "mllp",
    sender: str = "PMS|CLINIC",
) -> Incoming:
    return Incoming(
        feed=feed,
        sender=sender,
        control_id=control,
        kind="ADT^A01",
        version="2.5.1",
        payload=adt(control) if payload is None else payload,
        encoding="utf-8",
        peer="127.0.0.1:50000",
        received_at=dt.datetime(2026, 11, 23, 10, 15),
        ack_code="AA" if accepted else "AR",
        accepted=accepted,
        reason=None if accepted else "not accepted",
    )
