"""Pending C-FIND and successful C-STORE responses sent one PDU each: the command
sets encoded here are the ones pynetdicom encodes, and a pynetdicom requestor
receives every match, also when its maximum PDU length leaves the responses to
pynetdicom's own way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.dimse_messages import C_FIND_RSP, C_STORE_RSP
from pynetdicom.dimse_primitives import C_FIND, C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from pacsync.connectors.dicom import responses
from pacsync.connectors.dicom.scp import Peer, Peers, Scp
from pacsync.imaging.search import Query

CALLER = "FINDER"
STUDIES = 12


@pytest.mark.parametrize(("uid", "message_id", "status"), [
    ("1.2.840.10008.5.1.4.1.2.2.1", 7, 0xFF00),  # odd length: padded
    ("1.2.840.10008.5.1.4.1.2.1.1", 65535, 0xFF01),
])  # fmt: skip
def test_the_command_set_is_the_one_pynetdicom_encodes(
    uid: str, message_id: int, status: int
) -> None:
    primitive = C_FIND()
    primitive.AffectedSOPClassUID = uid
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.Status = status
    identifier = Dataset()
    identifier.PatientID = "P7"
    encoded = encode(identifier, True, True)
    assert encoded is not None
    primitive.Identifier = BytesIO(encoded)
    message = C_FIND_RSP()
    message.primitive_to_message(primitive)
    encoded = responses.command_set(responses.C_FIND_RSP, uid, message_id, status,
                                    data_set=True)  # fmt: skip
    assert encoded == encode(message.command_set, True, True)


def test_the_final_c_find_command_set_is_the_one_pynetdicom_encodes() -> None:
    uid = "1.2.840.10008.5.1.4.1.2.2.1"
    primitive = C_FIND()
    primitive.AffectedSOPClassUID = uid
    primitive.MessageIDBeingRespondedTo = 9
    primitive.Status = 0x0000
    message = C_FIND_RSP()
    message.primitive_to_message(primitive)
    encoded = responses.command_set(responses.C_FIND_RSP, uid, 9, 0x0000)
    assert encoded == encode(message.command_set, True, True)


@pytest.mark.parametrize("sop_uid", ["1.2.826.0.1.3680043.8.498.1", "1.2.3.45"])
def test_the_c_store_command_set_is_the_one_pynetdicom_encodes(sop_uid: str) -> None:
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = 3
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    primitive.AffectedSOPInstanceUID = sop_uid
    primitive.Status = 0x0000
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    encoded = responses.command_set(responses.C_STORE_RSP, "1.2.840.10008.5.1.4.1.1.2", 3,
                                    0x0000, sop_instance_uid=sop_uid)  # fmt: skip
    assert encoded == encode(message.command_set, True, True)


class Studies:
    """An index of :data:`STUDIES` studies, whatever is asked."""

    def search(self, query: Query) -> list[dict[str, Any]]:
        return [
            {"archive": "a", "PatientName": "DOE^JANE", "PatientID": "P7",
             "StudyDate": "20240105", "StudyInstanceUID": f"1.2.3.{n}",
             "StudyDescription": "CHEST " * 10}
            for n in range(STUDIES)
        ][query.offset :]  # fmt: skip


class NoInbox:
    """Nothing is stored in these tests; the SCP closes its inbox when it stops."""

    def close(self) -> None:
        pass


@contextmanager
def scp() -> Iterator[int]:
    inbox: Any = NoInbox()
    server = Scp("PACSYNC", peers=Peers([Peer(CALLER, "127.0.0.1")]), inbox=inbox,
                 search=Studies(), locate=lambda *_: [], port=0)  # fmt: skip
    port = server.start()
    try:
        yield port
    finally:
        server.stop()


def find(port: int, max_pdu: int) -> tuple[list[str], list[int], int]:
    """The study UIDs found, the statuses and how many P-DATA-TF PDUs brought them."""
    ae = AE(ae_title=CALLER)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    pdus: list[Any] = []
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSYNC", max_pdu=max_pdu,
                         evt_handlers=[(evt.EVT_PDU_RECV, pdus.append)])  # fmt: skip
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "P7"
    query.StudyInstanceUID = ""
    query.StudyDescription = ""
    found: list[str] = []
    statuses: list[int] = []
    pdus.clear()
    try:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            statuses.append(int(status.Status))
            if identifier is not None:
                assert identifier.PatientID == "P7"
                assert identifier.StudyDescription == ("CHEST " * 10).strip()
                found.append(str(identifier.StudyInstanceUID))
    finally:
        data = sum(type(event.pdu).__name__ == "P_DATA_TF" for event in pdus)
        assoc.release()
    return found, statuses, data


@pytest.mark.parametrize("max_pdu", [0, 16382])
def test_every_match_reaches_a_pynetdicom_requestor_one_pdu_each(max_pdu: int) -> None:
    with scp() as port:
        found, statuses, pdus = find(port, max_pdu)
    assert found == [f"1.2.3.{n}" for n in range(STUDIES)]
    assert statuses == [0xFF00] * STUDIES + [0x0000]
    assert pdus == STUDIES + 1  # and the final response


def test_responses_too_long_for_the_peers_pdus_go_pynetdicoms_way() -> None:
    with scp() as port:
        found, statuses, pdus = find(port, 150)
    assert found == [f"1.2.3.{n}" for n in range(STUDIES)]
    assert statuses == [0xFF00] * STUDIES + [0x0000]
    assert pdus > 2 * STUDIES
