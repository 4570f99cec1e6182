"""The SCP's commonest responses sent in one P-DATA-TF PDU each, encoded here.

pynetdicom sends every DIMSE message as a message object whose command set is built
element by element as a pydicom dataset and encoded twice (once for its group
length), then as one P-DATA-TF PDU for the command set and another for a data set.
An SCP answers mostly messages that differ only in a few values: the responses of a
C-FIND (one per match, and the final one) and the successful C-STORE responses (one
per instance received).  Building them that way costs about a quarter of a
millisecond each, on the path of every match and every instance, and a C-FIND
match takes the peer two PDUs to read.

:func:`send_directly` makes an association (one we accept) send those two kinds
(PS3.7 9.1.1.1 and 9.1.2.1: a C-FIND-RSP with status FF00 or FF01 and an
identifier or with status 0000 and none, a C-STORE-RSP with status 0000 and no
error comment) as their command
set, encoded here in Implicit VR Little Endian (PS3.7 6.3.1, E.1), and identifier,
each as a last-fragment PDV of one P-DATA-TF (PS3.8 9.3.5, E.2).  Any other
message, one that would not fit the peer's maximum PDU length, or one with handlers
bound to EVT_DIMSE_SENT or EVT_PDU_SENT (they are given pynetdicom's message and PDU
objects) goes pynetdicom's way.  The PDU is written on the socket by the association's thread
itself when nothing is waiting for the DUL reactor's thread to send it first
(:class:`_Writer`); else it is queued for that thread like any other.
"""

from __future__ import annotations

import struct
import threading
from io import BytesIO
from typing import Any, Final

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND, C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

PENDING: Final = frozenset({0xFF00, 0xFF01})
SUCCESS: Final = 0x0000
C_STORE_RSP: Final = 0x8001
C_FIND_RSP: Final = 0x8020
DATA_SET_PRESENT: Final = 0x0001
NO_DATA_SET: Final = 0x0101
COMMAND_LAST: Final = b"\x03"  # message control header: command, last fragment
DATA_SET_LAST: Final = b"\x02"  # data set, last fragment
PDV_OVERHEAD: Final = 6  # item length (4), presentation context ID, control header

_US = struct.Struct("<HHIH")  # tag group, element, length 2, value


def _ui(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def command_set(
    field: int,
    sop_class_uid: str,
    message_id: int,
    status: int,
    *,
    data_set: bool = False,
    sop_instance_uid: str = "",
) -> bytes:
    """The command set of a response (``field``: C-FIND-RSP or C-STORE-RSP), group
    length first, elements in tag order."""
    elements = [
        _ui(0x0002, sop_class_uid),
        _US.pack(0x0000, 0x0100, 2, field),
        _US.pack(0x0000, 0x0120, 2, message_id),
        _US.pack(0x0000, 0x0800, 2, DATA_SET_PRESENT if data_set else NO_DATA_SET),
        _US.pack(0x0000, 0x0900, 2, status),
    ]
    if sop_instance_uid:
        elements.append(_ui(0x1000, sop_instance_uid))
    encoded = b"".join(elements)
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(encoded)) + encoded


def send_directly(assoc: Association) -> None:
    """Send ``assoc``'s pending and final C-FIND and successful C-STORE responses one
    PDU each (before its threads start)."""
    dimse = assoc.dimse
    send_msg = dimse.send_msg
    writer = _Writer(assoc)

    def send(primitive: Any, context_id: int) -> None:
        pdvs = _pdvs(primitive, context_id)
        limit = dimse.maximum_pdu_size
        if (
            pdvs is None
            or (limit and sum(len(pdv[1]) + PDV_OVERHEAD - 1 for pdv in pdvs) > limit)
            or assoc.get_handlers(evt.EVT_DIMSE_SENT)
            or assoc.get_handlers(evt.EVT_PDU_SENT)
        ):
            send_msg(primitive, context_id)
            return
        pdu = P_DATA()
        pdu.presentation_data_value_list = pdvs  # type: ignore[assignment]
        if not writer.write(pdu):
            dimse.dul.send_pdu(pdu)

    dimse.send_msg = send  # type: ignore[method-assign]


class _Writer:
    """Writes a P-DATA-TF on the association's socket from the thread that made it,
    when the DUL reactor has nothing queued or being sent that would have to go first:
    no hand-over to the reactor's thread, which under load waits for a core.

    The primitives queued for the reactor are counted, and counted off as the reactor
    writes a PDU; one lock keeps the reactor's writes and these apart.  A PDU the
    reactor writes of its own (an abort) leaves the count below zero: from then on
    everything is queued, as pynetdicom does."""

    def __init__(self, assoc: Association) -> None:
        self.assoc = assoc
        self.lock = threading.Lock()
        self.queued = 0
        dul = assoc.dul
        sock = dul.socket
        assert sock is not None
        self._send = sock.send
        put = dul.to_provider_queue.put

        def counted_put(item: Any, block: bool = True, timeout: float | None = None) -> None:
            with self.lock:
                self.queued += 1
            put(item, block, timeout)

        def reactor_send(bytestream: bytes) -> None:
            with self.lock:
                self._send(bytestream)
                self.queued -= 1

        dul.to_provider_queue.put = counted_put  # type: ignore[method-assign]
        sock.send = reactor_send  # type: ignore[method-assign]

    def write(self, pdu: P_DATA) -> bool:
        """Write ``pdu`` now, or False: it is to be queued."""
        with self.lock:
            if self.queued or not self.assoc.is_established:
                return False
            self._send(P_DATA_TF(pdu).encode())
            return True


def _pdvs(primitive: Any, context_id: int) -> list[list[Any]] | None:
    """The PDVs of a response sent directly (lists: pynetdicom's P_DATA checks for
    them), or None."""
    if primitive.MessageIDBeingRespondedTo is None or primitive.AffectedSOPClassUID is None:
        return None
    message_id = int(primitive.MessageIDBeingRespondedTo)
    sop_class = str(primitive.AffectedSOPClassUID)
    if isinstance(primitive, C_FIND):
        if primitive.Status in PENDING and isinstance(primitive.Identifier, BytesIO):
            command = command_set(C_FIND_RSP, sop_class, message_id, int(primitive.Status),
                                  data_set=True)  # fmt: skip
            return [
                [context_id, COMMAND_LAST + command],
                [context_id, DATA_SET_LAST + primitive.Identifier.getvalue()],
            ]
        if primitive.Status == SUCCESS and primitive.Identifier is None:
            command = command_set(C_FIND_RSP, sop_class, message_id, SUCCESS)
            return [[context_id, COMMAND_LAST + command]]
        return None
    if (
        isinstance(primitive, C_STORE)
        and primitive.Status == SUCCESS
        and primitive.AffectedSOPInstanceUID
        and primitive.ErrorComment is None
        and primitive.OffendingElement is None
    ):
        command = command_set(C_STORE_RSP, sop_class, message_id, SUCCESS,
                              sop_instance_uid=str(primitive.AffectedSOPInstanceUID))  # fmt: skip
        return [[context_id, COMMAND_LAST + command]]
    return None
