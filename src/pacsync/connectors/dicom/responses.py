"""Pending C-FIND responses sent in one P-DATA-TF PDU each.

pynetdicom sends every DIMSE message as a message object whose command set is built
element by element as a pydicom dataset and encoded twice (once for its group
length), then as one P-DATA-TF PDU for the command set and another for the
identifier.  A C-FIND answer is mostly pending responses that differ only in their
identifier, so that costs more than finding the matches: about half a millisecond
of the SCP's time per match, and a second PDU for the peer to read.

:func:`send_pending_at_once` makes an association (one we accept) send each pending
C-FIND response (PS3.4 C.4.1.1.4, status FF00 or FF01) as its command set, encoded
here in Implicit VR Little Endian (PS3.7 9.3, E.1), and its identifier as the two
last-fragment PDVs of one P-DATA-TF (PS3.8 9.3.5, E.2).  Any other message, one
that would not fit the peer's maximum PDU length, or one with handlers bound to
EVT_DIMSE_SENT (they are given pynetdicom's message object) goes pynetdicom's way.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any, Final

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.pdu_primitives import P_DATA

PENDING: Final = frozenset({0xFF00, 0xFF01})
C_FIND_RSP: Final = 0x8020
DATA_SET_PRESENT: Final = 0x0001
COMMAND_LAST: Final = b"\x03"  # message control header: command, last fragment
DATA_SET_LAST: Final = b"\x02"  # data set, last fragment
PDV_OVERHEAD: Final = 6  # item length (4), presentation context ID, control header

_US = struct.Struct("<HHIH")  # tag group, element, length 2, value


def _ui(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def command_set(sop_class_uid: str, message_id: int, status: int) -> bytes:
    """The command set of a C-FIND response with an identifier, group length first."""
    elements = b"".join((
        _ui(0x0002, sop_class_uid),
        _US.pack(0x0000, 0x0100, 2, C_FIND_RSP),
        _US.pack(0x0000, 0x0120, 2, message_id),
        _US.pack(0x0000, 0x0800, 2, DATA_SET_PRESENT),
        _US.pack(0x0000, 0x0900, 2, status),
    ))  # fmt: skip
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(elements)) + elements


def send_pending_at_once(assoc: Association) -> None:
    """Send ``assoc``'s pending C-FIND responses one PDU each (before its threads start)."""
    dimse = assoc.dimse
    send_msg = dimse.send_msg

    def send(primitive: Any, context_id: int) -> None:
        if not _pending(primitive) or assoc.get_handlers(evt.EVT_DIMSE_SENT):
            send_msg(primitive, context_id)
            return
        data = primitive.Identifier.getvalue()
        command = command_set(str(primitive.AffectedSOPClassUID),
                              int(primitive.MessageIDBeingRespondedTo),
                              int(primitive.Status))  # fmt: skip
        limit = dimse.maximum_pdu_size
        if limit and len(command) + len(data) + 2 * PDV_OVERHEAD > limit:
            send_msg(primitive, context_id)
            return
        pdu = P_DATA()
        pdu.presentation_data_value_list = [  # lists: pynetdicom's setter checks for them
            [context_id, COMMAND_LAST + command],  # type: ignore[list-item]
            [context_id, DATA_SET_LAST + data],  # type: ignore[list-item]
        ]
        dimse.dul.send_pdu(pdu)

    dimse.send_msg = send  # type: ignore[method-assign]


def _pending(primitive: Any) -> bool:
    return (
        isinstance(primitive, C_FIND)
        and primitive.MessageIDBeingRespondedTo is not None
        and primitive.Status in PENDING
        and isinstance(primitive.Identifier, BytesIO)
        and primitive.AffectedSOPClassUID is not None
    )
