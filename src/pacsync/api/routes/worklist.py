"""``/worklist``: the Modality Worklist — procedure steps scheduled for modalities,
which query them by C-FIND from the pacsync SCP.  Scheduling a step that names its
study puts ``scheduled`` on the study's timeline."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.schemas import MAX_OFFSET, Model, UtcTime
from pacsync.bootstrap import worklist as scheduling
from pacsync.db.worklist import WorklistStore
from pacsync.domain.access import Role
from pacsync.domain.worklist import ProcedureStatus, ScheduledProcedure

router = APIRouter(prefix="/worklist", tags=["worklist"], responses=AUTHENTICATED)
ProcedureId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the procedure step's id")]
UID = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"
LOCAL_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
SOURCE = "api"


class ProcedureFields(Model):
    accession_number: str = Field(min_length=1, max_length=16, examples=["ACC20261124001"])
    patient_id: str = Field(min_length=1, max_length=64, examples=["P100"])
    patient_name: str = Field(min_length=1, max_length=194, examples=["DOE^JOHN"])
    modality: str = Field(pattern=r"^[A-Za-z0-9_ ]{1,16}$", examples=["CT"])
    station_ae: str = Field(
        min_length=1, max_length=16, examples=["CT1"], description="ScheduledStationAETitle"
    )
    study_uid: str | None = Field(None, max_length=64, pattern=UID, examples=["2.25.7001"])
    patient_birth_date: str = Field("", pattern=r"^(\d{8}|\d{4}-\d{2}-\d{2})?$")
    patient_sex: Literal["", "M", "F", "O"] = ""
    requested_procedure_id: str = Field("", max_length=16, description="default: accession")
    requested_procedure_description: str = Field("", max_length=64, examples=["CT HEAD"])
    step_id: str = Field("", max_length=16, description="default: the accession number")
    step_description: str = Field("", max_length=64)
    station_name: str = Field("", max_length=16)
    referring_physician: str = Field("", max_length=194)
    performing_physician: str = Field("", max_length=194)


class ProcedureCreate(ProcedureFields):
    """A procedure step to schedule."""

    start: dt.datetime = Field(
        examples=["2026-11-24T09:30:00"],
        description="on the department's local clock: an offset given is dropped (DICOM "
        "dates and times have no zone)",
    )


class Procedure(ProcedureFields):
    id: int = Field(examples=[7])
    status: Literal["scheduled", "cancelled"]
    source: str = Field(examples=["api"], description="who scheduled it: cli, api, a feed")
    start: str = Field(
        pattern=LOCAL_TIME,
        examples=["2026-11-24T09:30:00"],
        description="on the department's local clock, without an offset",
    )
    created_at: UtcTime

    @classmethod
    def of(cls, item: ScheduledProcedure) -> Procedure:
        fields = item.as_dict()
        return cls.model_validate({**fields, "start": fields["start"].isoformat()})


class WorklistPage(Model):
    items: list[Procedure] = Field(description="by start time")
    total: int
    limit: int
    offset: int


@router.get("", summary="Scheduled procedure steps by start time, with filters")
def list_procedures(
    state: StateDep,
    _who: Viewer,
    *,
    status: Literal["scheduled", "cancelled", "all"] = "scheduled",
    station: Annotated[str | None, Query(max_length=16, description="station AE")] = None,
    day: Annotated[dt.date | None, Query(alias="date", description="start day")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> WorklistPage:
    start_from = dt.datetime.combine(day, dt.time()) if day else None
    start_to = start_from + dt.timedelta(days=1) if start_from else None
    items, total = WorklistStore(state.store.engine).page(
        status=None if status == "all" else ProcedureStatus(status), station_ae=station,
        start_from=start_from, start_to=start_to, limit=limit, offset=offset,
    )  # fmt: skip
    return WorklistPage(
        items=[Procedure.of(p) for p in items], total=total, limit=limit, offset=offset
    )


@router.get("/{procedure_id}", summary="One procedure step", responses=problems.responses(404))
def get_procedure(procedure_id: ProcedureId, state: StateDep, _who: Viewer) -> Procedure:
    return Procedure.of(WorklistStore(state.store.engine).get(procedure_id))


@router.post(
    "",
    status_code=201,
    summary="Schedule a procedure step (operator)",
    responses=problems.responses(400, 409, 422),
)
def schedule(
    body: ProcedureCreate,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("worklist.add", Role.OPERATOR)],
) -> Procedure:
    entry.target = body.accession_number
    added = scheduling.schedule(state.store, body.model_dump(), source=SOURCE)
    entry.detail = {"procedure": added.id, "study_uid": added.procedure.study_uid}
    return Procedure.of(added)


@router.delete(
    "/{procedure_id}",
    summary="Cancel a scheduled procedure step (operator): modalities no longer see it",
    responses=problems.responses(404, 409),
)
def cancel(
    procedure_id: ProcedureId,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("worklist.cancel", Role.OPERATOR, "procedure_id")],
) -> Procedure:
    return Procedure.of(scheduling.cancel(state.store, procedure_id))
