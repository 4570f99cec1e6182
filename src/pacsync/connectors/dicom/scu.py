"""pacsync as a service class user of query services: C-ECHO and C-FIND.

Each operation takes a :class:`DicomNode` (a fresh association, released at the
end) or a :class:`Session` (associations reused across operations).  A failure
status from the node is a :class:`DimseFailure` naming the status; a node that
drops the association mid-operation a :class:`ConnectionTimeout`; given a node, such
transient errors are retried by the node's policy (:mod:`.retry`).  Retrieval
(C-MOVE, C-GET) is in :mod:`.retrieve`, sending (C-STORE) in :mod:`.storage`.
"""

from __future__ import annotations

import time

from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from pacsync.connectors.dicom.association import Session, session
from pacsync.connectors.dicom.dimse import (
    failure,
    next_id,
    query_contexts,
    status_of,
)
from pacsync.connectors.dicom.metrics import Operation, recorded
from pacsync.connectors.dicom.query import Level, QueryCache, answer, identifier
from pacsync.connectors.dicom.retry import retried
from pacsync.connectors.dicom.status import Category, category
from pacsync.domain.dicom_node import DicomNode

_cache = QueryCache()


@retried("C-ECHO")
@recorded(Operation.ECHO)
def echo(node: DicomNode | Session) -> float:
    """C-ECHO; the seconds the node took to answer (association open excluded when
    the session already had one)."""
    with session(node) as s:
        assoc = s.association("query", query_contexts())
        started = time.perf_counter()
        rsp = assoc.send_c_echo()
        took = time.perf_counter() - started
        status = status_of(rsp, s.node, "C-ECHO")
        if category(status) is not Category.SUCCESS:
            raise failure(s.node, "C-ECHO", status, rsp)
        return took


def find(
    node: DicomNode | Session,
    level: Level,
    keys: dict[str, str],
    limit: int = 0,
    *,
    cached: bool = True,
) -> list[dict[str, str]]:
    """C-FIND at ``level`` (Patient Root at PATIENT, Study Root below); answers as
    keyword → value; after ``limit`` answers (0: all) the query is cancelled."""
    target = node.node if isinstance(node, Session) else node
    key = QueryCache.key(f"{target.name}|{target.address}", level, keys, limit)
    if cached and (kept := _cache.get(key)) is not None:
        return kept
    found = _find(node, level, keys, limit)
    _cache.put(key, found, target.query_cache_s)
    return found


@retried("C-FIND")
@recorded(Operation.FIND)
def _find(
    node: DicomNode | Session, level: Level, keys: dict[str, str], limit: int
) -> list[dict[str, str]]:
    """C-FIND on the node itself (the query cache is :func:`find`'s)."""
    query = identifier(level, keys)
    model = (
        PatientRootQueryRetrieveInformationModelFind
        if level is Level.PATIENT
        else StudyRootQueryRetrieveInformationModelFind
    )
    found: list[dict[str, str]] = []
    with session(node) as s:
        assoc = s.association("query", query_contexts())
        msg_id = next_id(assoc)
        cancelled = False
        for rsp, ident in assoc.send_c_find(query, model, msg_id=msg_id):
            status = status_of(rsp, s.node, "C-FIND")
            kind = category(status)
            if kind is Category.PENDING:
                if cancelled:
                    continue
                if ident is not None:
                    found.append(answer(ident))
                if limit and len(found) >= limit:
                    assoc.send_c_cancel(msg_id, query_model=model)
                    cancelled = True
            elif kind is Category.FAILURE:
                raise failure(s.node, "C-FIND", status, rsp)
    return found[:limit] if limit else found


def clear_query_cache() -> None:
    _cache.clear()
