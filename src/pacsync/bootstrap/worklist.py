"""The Modality Worklist wired: scheduling a procedure step (from the CLI, the API or,
later, an order feed) records it in the store and, when it names its study, a
``scheduled`` event on the study's timeline; the SCP answers worklist queries from
the same store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pacsync import bootstrap
from pacsync.db.study_events import StudyEvents
from pacsync.db.worklist import WorklistStore
from pacsync.domain.study_workflow import Event
from pacsync.domain.worklist import NewProcedure, ScheduledProcedure

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SOURCE = "worklist"  # the timeline's source of scheduled events


def schedule(
    store: bootstrap.Store, procedure: NewProcedure | Mapping[str, Any], *, source: str
) -> ScheduledProcedure:
    """Schedule a procedure step (``source``: who asked — cli, api, an order feed)."""
    new = procedure if isinstance(procedure, NewProcedure) else NewProcedure.of(procedure)
    added = WorklistStore(store.engine).add(new, source=source)
    p = added.procedure
    if p.study_uid:
        detail = {"procedure": added.id, "accession": p.accession_number,
                  "modality": p.modality, "station": p.station_ae,
                  "start": p.start.isoformat(), "by": source}  # fmt: skip
        StudyEvents(store.engine).record(p.study_uid, Event.SCHEDULED, source=SOURCE,
                                         detail=detail)  # fmt: skip
    return added


def cancel(store: bootstrap.Store, procedure_id: int) -> ScheduledProcedure:
    return WorklistStore(store.engine).cancel(procedure_id)


def answering(store: bootstrap.Store) -> Callable[[Dataset], Iterable[Dataset]]:
    """The SCP's Modality Worklist: identifier in, matching steps out as datasets."""
    from pacsync.connectors.dicom import worklist as mwl  # pydicom: only the SCP needs it

    procedures = WorklistStore(store.engine)

    def answer(identifier: Dataset) -> Iterable[Dataset]:
        return mwl.answers(identifier, procedures.find)

    return answer
