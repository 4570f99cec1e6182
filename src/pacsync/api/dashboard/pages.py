"""The dashboard's pages: login and logout, overview, property sync (``/pacs-sync``), jobs,
conflicts, webhooks, imaging, messaging and the audit log.

Pages are rendered here from the store (the API routes' own reads); everything a
page changes it changes by calling the REST API from its script with the session
(see :mod:`.session`), so writes get the API's role checks and audit records.
Live parts poll the API or follow ``/pacs-sync/events`` (server-sent events).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from pacsync import bootstrap
from pacsync.api.dashboard import views
from pacsync.api.dashboard.auth import (
    Caller,
    CallerDep,
    box_of,
    require,
    safe_next,
    verify,
)
from pacsync.api.dashboard.session import (
    COOKIE,
    LIFETIME_S,
    LOGIN_COOKIE,
    Session,
    csrf_matches,
    same_origin,
    session_of,
    set_cookie,
)
from pacsync.api.deps import Audit, AuditEntry, record_audit
from pacsync.api.problems import ProblemException
from pacsync.api.state import ApiState
from pacsync.domain.access import Role
from pacsync.errors import InvalidRequest, PacsyncError
from pacsync.sync.reconcile import reconcile

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
EVENTS_FOR_S = 300.0  # a stream ends after this; the browser reconnects by itself
EVENTS_EVERY_S = 0.5
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def render(
    request: Request, name: str, caller: Caller | None, code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"caller": caller, "path": request.url.path, **context},
        status_code=code,
        headers=HEADERS,
    )


def audit_read(request: Request, caller: Caller, action: str, target: str | None = None) -> None:
    """A page that shows patient data is recorded like the API route that reads it."""
    record_audit(state_of(request), request, AuditEntry(action, target, caller.who.subject), "ok")


# -- login and logout ----------------------------------------------------------------------


def _login_page(request: Request, next_path: str, error: str | None = None) -> HTMLResponse:
    token = request.cookies.get(LOGIN_COOKIE) or _new_token()
    state = state_of(request)
    response = render(
        request,
        "login.html",
        None,
        csrf=token,
        next=safe_next(next_path),
        error=error,
        jwt=state.verifier is not None,
    )
    secure = request.url.scheme == "https"
    set_cookie(response, LOGIN_COOKIE, token, secure=secure, max_age=3600)
    return response


def _new_token() -> str:
    return secrets.token_urlsafe(24)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next)


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a posted form; a body of another type is a 400 problem (no body:
    no fields)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in FORM_TYPES:
        if media or await request.body():
            raise ProblemException(
                400,
                InvalidRequest(
                    f"this form takes {FORM_TYPES[0]}, not '{media or 'no type'}'",
                    hint="Send the page's form as the browser does.",
                ),
            )
        return {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """The login form: the key (or JWT) is verified like a bearer token, then sealed in
    the session cookie; the form's CSRF token must match its cookie."""
    fields = await form_of(request)
    token, next_path = fields.get("token", "").strip()[:8000], fields.get("next", "/")
    expected = request.cookies.get(LOGIN_COOKIE)
    given = fields.get("csrf")
    if not expected or not csrf_matches(expected, given) or not same_origin(dict(request.headers)):
        return _login_page(request, next_path, "The form expired; please sign in again.")
    who = await verify(request, state_of(request), token) if token else None
    if who is None:
        return _login_page(request, next_path, "That key or token was not accepted.")
    session = Session.new(token)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    secure = request.url.scheme == "https"
    set_cookie(response, COOKIE, session.seal(box_of(request)), secure=secure, max_age=LIFETIME_S)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    record_audit(state_of(request), request, AuditEntry("dashboard.login", None, who.subject), "ok")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session (the form's CSRF token must be the session's)."""
    fields = await form_of(request)
    response = RedirectResponse("/login", status_code=303)
    session = session_of(request, box_of(request))
    if session is not None and csrf_matches(session.csrf, fields.get("csrf")):
        response.delete_cookie(COOKIE, path="/", samesite="strict", httponly=True)
    return response


# -- overview ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, caller: CallerDep) -> HTMLResponse:
    state = state_of(request)
    return render(
        request,
        "overview.html",
        caller,
        pipelines=views.pipelines(state),
        chart=views.records_chart(state),
        queues=views.queue_depths(state),
        circuits=views.circuits(state),
        errors=views.recent_errors(state),
        conflicts=state.store.conflicts.counts(),
        dead_letters=state.store.dead_letters.count(),
    )


# -- property sync -------------------------------------------------------------------------


def _sql_pipelines(state: ApiState) -> list[str]:
    return [p.name for p in views.pipelines(state) if p.valid and p.sql]


@router.get("/pacs-sync", response_class=HTMLResponse)
def pacs_sync(
    request: Request,
    caller: CallerDep,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    state = state_of(request)
    names = _sql_pipelines(state)
    chosen = pipeline or ("property-assessment" if "property-assessment" in names else None)
    chosen = chosen or (names[0] if names else None)
    if chosen is None:
        return render(request, "pacs_sync.html", caller, names=names, chosen=None)
    try:
        found = views.sync_pipeline(state, chosen)
    except PacsyncError as error:
        return render(
            request, "pacs_sync.html", caller, names=names, chosen=None, error=error, code=404
        )
    history, _ = state.store.jobs.page(pipeline=chosen, limit=20)
    active = [views.job_summary(j) for j in state.store.jobs.active(chosen)]
    return render(
        request,
        "pacs_sync.html",
        caller,
        names=names,
        chosen=chosen,
        found=found,
        history=history,
        last_runs=views.entity_last_runs(history),
        active=active,
    )


@router.get("/pacs-sync/events")
async def job_events(
    request: Request,
    caller: CallerDep,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    job: Annotated[list[str] | None, Query(max_length=50)] = None,
) -> StreamingResponse:
    """Server-sent events: the active jobs (of ``pipeline``) and the named ``job`` ids,
    sent whenever they change, as ``event: jobs``."""
    state = state_of(request)
    ids = [j[:64] for j in job or []]

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + EVENTS_FOR_S
        last = ""
        yield "retry: 1000\n\n"
        while loop.time() < ends and not await request.is_disconnected():
            data = await run_in_threadpool(views.live_jobs, state, pipeline, ids)
            text = json.dumps(data, default=str)
            if text != last:
                last = text
                yield f"event: jobs\ndata: {text}\n\n"
            else:
                yield ": idle\n\n"
            await asyncio.sleep(EVENTS_EVERY_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class ReconcileRequest(BaseModel):
    pipeline: str = Field(min_length=1, max_length=100)


@router.post("/pacs-sync/reconcile")
def reconcile_now(
    body: ReconcileRequest,
    request: Request,
    entry: Annotated[AuditEntry, Audit("pipeline.reconcile", Role.OPERATOR)],
) -> dict[str, Any]:
    """Compare source and target (``pacsync reconcile``): the checklist, as JSON.  The
    page's script calls it like the API (bearer token from the session, CSRF header)."""
    state = state_of(request)
    entry.target = body.pipeline
    _, spec = bootstrap.pipeline(body.pipeline, state.settings)
    source, destination = bootstrap.source(spec), bootstrap.destination(spec)
    try:
        for name in spec.entities:
            destination.prepare(name)
        reports = reconcile(spec, source, destination, state.store.dead_letters)
    finally:
        source.close()
        destination.close()
    entry.outcome = "match" if all(r.explained for r in reports) else "mismatch"
    return {
        "entities": [
            {
                "entity": r.entity,
                "source_rows": r.source_rows,
                "target_rows": r.target_rows,
                "content_match": r.content_match,
                "dead_letters": r.dead_letters,
                "parked_in_source": r.parked_in_source,
                "parked_in_target": r.parked_in_target,
                "orphans": [
                    {"field": o.field, "parent": o.parent, "source": o.source, "target": o.target}
                    for o in r.orphans
                ],
                "explained": r.explained,
            }
            for r in reports
        ]
    }


# -- jobs, queues, dead letters ------------------------------------------------------------

STATUSES = ("queued", "running", "succeeded", "failed", "interrupted", "cancelled")


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    caller: CallerDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    state = state_of(request)
    wanted = status if status in STATUSES else None
    items, total = state.store.jobs.page(
        status=wanted, pipeline=pipeline or None, limit=50, offset=offset
    )
    letters = state.store.dead_letters.find(status="open", limit=50, offset=0)
    audit_read(request, caller, "dead_letter.list")
    return render(
        request,
        "jobs.html",
        caller,
        jobs=[views.job_summary(j) | {"view": j} for j in items],
        total=total,
        offset=offset,
        filter_status=wanted,
        pipeline=pipeline or "",
        statuses=STATUSES,
        pipelines=[p.name for p in views.pipelines(state)],
        queues=views.queue_depths(state),
        letters=letters,
        letter_total=state.store.dead_letters.count(),
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, caller: CallerDep, job_id: Annotated[str, PathParam(max_length=64)]
) -> HTMLResponse:
    state = state_of(request)
    job = state.store.jobs.get(job_id[:64])
    if job is None:
        return render(request, "missing.html", caller, what=f"job {job_id}", code=404)
    audit_read(request, caller, "job.read", job.id)
    return render(
        request,
        "job.html",
        caller,
        job=job,
        summary=views.job_summary(job),
        errors=state.store.jobs.errors(job.id),
        request_json=json.dumps(job.request or {}, indent=2, default=str),
        progress_json=json.dumps(job.progress, indent=2, default=str),
    )


@router.get("/dead-letters/{letter_id}", response_class=HTMLResponse)
def letter_page(request: Request, caller: CallerDep, letter_id: int) -> HTMLResponse:
    state = state_of(request)
    letter = state.store.dead_letters.get(letter_id)
    if letter is None:
        return render(request, "missing.html", caller, what=f"dead letter {letter_id}", code=404)
    audit_read(request, caller, "dead_letter.read", str(letter_id))
    return render(
        request,
        "letter.html",
        caller,
        letter=letter,
        letter_json=json.dumps(letter, indent=2, default=str),
    )


# -- conflicts -----------------------------------------------------------------------------


@router.get("/conflicts", response_class=HTMLResponse)
def conflicts_page(
    request: Request,
    caller: CallerDep,
    status: Annotated[str, Query(max_length=20)] = "open",
) -> HTMLResponse:
    state = state_of(request)
    wanted = status if status in ("open", "resolved", "ignored") else None
    items, total = state.store.conflicts.list(status=wanted, limit=100)
    audit_read(request, caller, "conflict.list")
    return render(
        request,
        "conflicts.html",
        caller,
        items=items,
        total=total,
        filter_status=status,
        counts=state.store.conflicts.counts(),
    )


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@router.get("/conflicts/{conflict_id}", response_class=HTMLResponse)
def conflict_page(request: Request, caller: CallerDep, conflict_id: int) -> HTMLResponse:
    state = state_of(request)
    found = state.store.conflicts.get(conflict_id) if 0 < conflict_id < 2**31 else None
    if found is None:
        what = f"conflict {conflict_id}"
        return render(request, "missing.html", caller, what=what, code=404)
    audit_read(request, caller, "conflict.read", str(conflict_id))
    rows = []
    for f in found.fields:
        local, remote, base = f.get("local"), f.get("remote"), f.get("base")
        rows.append(
            {
                "field": f["field"],
                "local": _cell(local),
                "remote": _cell(remote),
                "base": _cell(base),
                "local_changed": local != base,
                "remote_changed": remote != base,
                "clash": base not in (local, remote) and local != remote,
            }
        )
    return render(
        request,
        "conflict.html",
        caller,
        conflict=found,
        rows=rows,
        resolved_json=json.dumps(found.resolved_value, indent=2, default=str),
        local_json=json.dumps({f["field"]: f.get("local") for f in found.fields}, default=str),
    )


# -- webhooks ------------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, caller: CallerDep) -> HTMLResponse:
    from pacsync.jobs.webhooks import EVENTS

    state = state_of(request)
    if not caller.can_admin:
        return render(request, "webhooks.html", caller, hooks=[], events=EVENTS, admin=False)
    hooks = state.store.webhooks.list()
    recent = {h.id: state.store.webhooks.deliveries(h.id, 1) for h in hooks}
    return render(
        request,
        "webhooks.html",
        caller,
        hooks=hooks,
        recent=recent,
        events=EVENTS,
        admin=True,
        pipelines=[p.name for p in views.pipelines(state)],
    )


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook_page(
    request: Request, caller: CallerDep, webhook_id: Annotated[str, PathParam(max_length=64)]
) -> HTMLResponse:
    require(caller, Role.ADMIN)
    state = state_of(request)
    hook = state.store.webhooks.get(webhook_id)
    if hook is None:
        return render(request, "missing.html", caller, what=f"webhook {webhook_id}", code=404)
    deliveries = state.store.webhooks.deliveries(webhook_id, 100)
    return render(request, "webhook.html", caller, hook=hook, deliveries=deliveries)


# -- imaging -------------------------------------------------------------------------------


@router.get("/imaging", response_class=HTMLResponse)
def imaging_page(request: Request, caller: CallerDep) -> HTMLResponse:
    state = state_of(request)
    archives = state.store.archives.list()
    scans = [
        views.job_summary(j)
        for j in [
            *state.store.jobs.recent(status="running", limit=50),
            *state.store.jobs.recent(status="queued", limit=50),
        ]
        if j.kind == "archive-scan"
    ]
    return render(request, "imaging.html", caller, archives=archives, scans=scans)


@router.get("/imaging/studies/{uid}", response_class=HTMLResponse)
def study_page(
    request: Request, caller: CallerDep, uid: Annotated[str, PathParam(pattern=r"^[0-9.]{1,64}$")]
) -> HTMLResponse:
    state = state_of(request)
    located = state.store.archive_search.locate(uid)
    if not located:
        return render(request, "missing.html", caller, what=f"study {uid}", code=404)
    audit_read(request, caller, "study.read", uid)
    first = located[0]
    places: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[str, Any]] = {}
    for row in located:
        place = places.setdefault(
            row["archive"], {"archive": row["archive"], "kind": row["kind"], "root": row["root"],
                             "instances": 0, "bytes": 0},
        )  # fmt: skip
        place["instances"] += 1
        place["bytes"] += int(row["size"] or 0)
        s = series.setdefault(
            row["series_instance_uid"],
            {"uid": row["series_instance_uid"], "number": row["series_number"],
             "modality": row["modality"], "description": row["series_description"],
             "instances": 0, "archives": set()},
        )  # fmt: skip
        s["instances"] += 1
        s["archives"].add(row["archive"])
    ordered = sorted(series.values(), key=lambda s: (s["number"] is None, s["number"] or 0))
    return render(
        request, "study.html", caller, study=first, uid=uid, places=places.values(),
        series=ordered,
    )  # fmt: skip


@router.get("/imaging/viewer/{uid}", response_class=HTMLResponse)
def viewer_page(
    request: Request, caller: CallerDep, uid: Annotated[str, PathParam(pattern=r"^[0-9.]{1,64}$")]
) -> HTMLResponse:
    return render(request, "viewer.html", caller, uid=uid)


# -- messaging -----------------------------------------------------------------------------


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, caller: CallerDep) -> HTMLResponse:
    return render(request, "messages.html", caller)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(request: Request, caller: CallerDep, message_id: int) -> HTMLResponse:
    from pacsync.api.dashboard.hl7_fields import segments
    from pacsync.db.messages import MessageStore
    from pacsync.domain.phi import mask_message

    state = state_of(request)
    store = MessageStore(state.store.engine)
    row = store.get(message_id) if 0 < message_id < 2**31 else None
    found = store.payload(message_id) if row is not None else None
    if row is None or found is None:
        return render(request, "missing.html", caller, what=f"message {message_id}", code=404)
    payload, encoding = found
    text = payload.decode(encoding, errors="replace")
    if not caller.can_operate:
        text = mask_message(text, text[3:4] or "|")
    audit_read(request, caller, "message.read", str(message_id))
    return render(request, "message.html", caller, message=row, segments=segments(text))


# -- audit ---------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    caller: CallerDep,
    *,
    actor: Annotated[str | None, Query(max_length=400)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=400)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    require(caller, Role.ADMIN)
    state = state_of(request)
    start = None
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            start = None
    items, total = state.store.audit.query(
        actor=actor or None, action=action or None, target=target or None,
        outcome=outcome or None, since=start, until=None, limit=100, offset=offset,
    )  # fmt: skip
    filters = {"actor": actor or "", "action": action or "", "target": target or "",
               "outcome": outcome or "", "since": since or ""}  # fmt: skip
    return render(
        request, "audit.html", caller, items=items, total=total, offset=offset, filters=filters
    )
