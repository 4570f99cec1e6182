"""``/pipelines``: the pipeline files, read, validated and written.

A file arrives as YAML text (``application/yaml``) or as JSON ``{"yaml": "..."}``;
it is validated like ``pacsync check`` validates a file before it replaces
anything.  Connection URLs are shown with their passwords hidden.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from pacsync import bootstrap
from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, SettingsDep, Viewer
from pacsync.api.problems import ProblemException
from pacsync.api.schemas import (
    PIPELINE_NAME,
    ConnectionInfo,
    EntityInfo,
    ErrorInfo,
    PipelineDetail,
    PipelineSaved,
    PipelineSummary,
    PipelineText,
    Validation,
)
from pacsync.bootstrap import pipeline_files
from pacsync.config import find_pipeline, list_pipelines, load_pipeline
from pacsync.connectors.sql.engine import redact
from pacsync.db.connections import masked
from pacsync.domain.access import Role
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import InvalidRequest, PacsyncError

router = APIRouter(prefix="/pipelines", tags=["pipelines"], responses=AUTHENTICATED)
Name = Annotated[str, PathParam(pattern=PIPELINE_NAME, examples=["property-assessment"])]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
EXAMPLE = "version: 1\nname: county\nconnections:\n  legacy: {url: ...}\n..."
PIPELINE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The pipeline file: YAML text, or JSON with the text in 'yaml'.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}, "example": EXAMPLE},
            "application/json": {"schema": PipelineText.model_json_schema()},
        },
    }
}


def _error(error: PacsyncError) -> ErrorInfo:
    return ErrorInfo(code=error.code, message=error.message, hint=error.hint)


def _names(spec: PipelineSpec) -> list[str]:
    return list(spec.entities)


@router.get("", summary="Every pipeline in the pipeline folders")
def list_all(settings: SettingsDep, _who: Viewer) -> list[PipelineSummary]:
    found = []
    for path in list_pipelines(settings):
        try:
            spec = load_pipeline(path)
            found.append(
                PipelineSummary(name=spec.name, file=str(path), valid=True, entities=_names(spec))
            )
        except PacsyncError as error:
            found.append(
                PipelineSummary(
                    name=path.stem, file=str(path), valid=False, entities=[], error=_error(error)
                )
            )
    return found


@router.get(
    "/{name}",
    summary="One pipeline: connections (no passwords), entities, schedule",
    responses=problems.responses(404, 422),
)
def get_one(name: Name, settings: SettingsDep, _who: Viewer) -> PipelineDetail:
    path, spec = bootstrap.pipeline(name, settings)
    return PipelineDetail(
        name=spec.name,
        file=str(path),
        description=spec.description,
        source=spec.source.connection,
        destination=spec.destination.connection,
        connections={
            n: ConnectionInfo(
                url=masked(redact(c.url), {})[0], description=c.description, fallback=c.fallback
            )
            for n, c in spec.connections.items()
        },
        entities=[
            EntityInfo(
                name=n,
                source_table=e.source.table,
                target_table=e.target.table,
                key=list(e.source.key),
                strategy=e.strategy,
                fields=len(e.fields),
            )
            for n, e in spec.entities.items()
        ],
        schedule=spec.schedule.model_dump() if spec.schedule else None,
    )


async def _text(request: Request) -> str:
    """The pipeline file in the body: YAML as is, or the 'yaml' member of a JSON object."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw.strip():
        raise _bad(400, "the body is empty; send the pipeline file")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(400, "the body is not UTF-8 text") from None
    if media == "application/json" or media.endswith("+json"):
        try:
            return PipelineText.model_validate(json.loads(body)).yaml
        except json.JSONDecodeError as exc:
            raise _bad(400, f"the body is not valid JSON: {exc.msg}") from None
        except ValidationError:
            raise _bad(422, "a JSON body must be an object with the file in 'yaml'") from None
    if media in YAML_TYPES or not media:
        return body
    raise _bad(415, f"unsupported content type '{media}'; send application/yaml or JSON")


def _bad(status: int, message: str) -> ProblemException:
    return ProblemException(status, InvalidRequest(message))


@router.put(
    "/{name}",
    summary="Create or replace a pipeline file (validated first; admin)",
    openapi_extra=PIPELINE_BODY,
    responses={
        201: {"model": PipelineSaved, "description": "a new pipeline was created"},
        **problems.responses(400, 413, 415, 422),
    },
)
async def put(
    name: Name,
    request: Request,
    response: Response,
    settings: SettingsDep,
    entry: Annotated[AuditEntry, Audit("pipeline.put", Role.ADMIN, "name")],
) -> PipelineSaved:
    text = await _text(request)
    path, spec, created = await run_in_threadpool(pipeline_files.save_text, settings, name, text)
    entry.outcome = "created" if created else "replaced"
    entry.detail = {"file": str(path)}
    response.status_code = 201 if created else 200
    return PipelineSaved(name=spec.name, file=str(path), created=created, entities=_names(spec))


def _validation(spec: PipelineSpec) -> Validation:
    return Validation(valid=True, name=spec.name, entities=_names(spec))


@router.post(
    "/validate",
    summary="Validate a pipeline file without saving it",
    openapi_extra=PIPELINE_BODY,
    responses=problems.responses(400, 413, 415, 422),
)
async def validate_text(request: Request, settings: SettingsDep, _who: Viewer) -> Validation:
    text = await _text(request)
    try:
        spec = await run_in_threadpool(pipeline_files.check_text, settings, text)
    except PacsyncError as error:
        return Validation(valid=False, error=_error(error))
    return _validation(spec)


@router.post(
    "/{name}/validate",
    summary="Validate a stored pipeline file",
    responses=problems.responses(404),
)
def validate_stored(name: Name, settings: SettingsDep, _who: Viewer) -> Validation:
    path = find_pipeline(name, settings)
    try:
        spec = load_pipeline(path)
    except PacsyncError as error:
        return Validation(valid=False, name=name, error=_error(error))
    return _validation(spec)
