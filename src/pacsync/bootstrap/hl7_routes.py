"""MLLP routes wired: connections of kind ``mllp`` (``mllp://host:port``, options
``types`` and ``feeds`` it takes, ``tls``) receive the processed messages they take,
in arrival order, through ``hl7-deliver`` jobs (one per route at a time); a route with
option ``acks`` receives their application ACKs (MSH-16) instead."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from pacsync import bootstrap
from pacsync.bootstrap.hl7_acks import AckOutbox
from pacsync.connectors.hl7.sender import MllpPeer, MllpSender
from pacsync.db.deliveries import DeliveryStore
from pacsync.domain.messaging import Route
from pacsync.errors import ConfigError, MllpPeerUnavailable, NotFound
from pacsync.jobs.forwarding import DeliveryCounts, deliver
from pacsync.jobs.queues import MESSAGES
from pacsync.jobs.request import JobRequest
from pacsync.ports import JobContext

KIND = "mllp"
JOB = "hl7-deliver"


def route_of(name: str, url: str, options: dict[str, Any]) -> Route:
    parts = urlsplit(url)
    if parts.scheme != KIND or not parts.hostname or not parts.port:
        raise ConfigError(
            f"route '{name}': {url!r} is not an MLLP address",
            hint="Write it as mllp://host:port, e.g. mllp://10.0.0.5:2575",
        )
    kinds = options.get("types") or []
    feeds = options.get("feeds") or []
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k]
    if isinstance(feeds, str):
        feeds = [f for f in feeds.split(",") if f]
    return Route(
        name=name,
        host=parts.hostname,
        port=parts.port,
        kinds=tuple(str(k).strip().upper() for k in kinds),
        feeds=tuple(str(f).strip() for f in feeds),
        tls=bool(options.get("tls")),
        acks=bool(options.get("acks")),
    )


def routes(store: bootstrap.Store) -> list[Route]:
    return [route_of(c.name, c.url, c.options) for c in store.connections.list() if c.kind == KIND]


def add_route(
    store: bootstrap.Store,
    name: str,
    url: str,
    *,
    kinds: list[str],
    feeds: list[str],
    tls: bool = False,
    acks: bool = False,
) -> Route:
    options: dict[str, Any] = {"types": kinds, "feeds": feeds, "tls": tls, "acks": acks}
    route = route_of(name, url, options)  # refused before it is stored
    store.connections.put(name, KIND, url, options)
    return route


def _peer(route: Route) -> MllpPeer:
    context = ssl.create_default_context() if route.tls else None
    return MllpPeer(MllpSender(route.host, route.port, tls=context))


def deliver_route(
    store: bootstrap.Store, name: str, should_stop: Any = lambda: False
) -> DeliveryCounts:
    """Send what waits for route ``name`` now, in this process."""
    found = {r.name: r for r in routes(store)}.get(name)
    if found is None:
        raise NotFound(f"no MLLP route '{name}'", hint="List them: pacsync hl7 route list")
    outbox = AckOutbox(store.engine) if found.acks else DeliveryStore(store.engine)
    return deliver(name, outbox, _peer(found), should_stop=should_stop)


def deliver_request(route: str, trigger: str = "manual") -> JobRequest:
    return JobRequest(kind=JOB, pipeline=route, trigger=trigger, queue=MESSAGES, partition=route)


class DeliverJobs:
    """The hl7-deliver job of one route: marks it running, sends, records the counts."""

    def __init__(
        self, store: bootstrap.Store, executor_id: str, *, stopping: threading.Event | None = None
    ) -> None:
        self.store, self.executor_id = store, executor_id
        self.stopping = stopping or threading.Event()

    def __call__(self, ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        return dict(ctx.step("deliver", self.run, ctx.job_id, asked.pipeline))

    def run(self, job_id: str, route: str) -> dict[str, Any]:
        jobs = self.store.jobs
        jobs.start(job_id, self.executor_id)

        def should_stop() -> bool:
            return self.stopping.is_set() or jobs.status_of(job_id) == "cancelled"

        try:
            counts = deliver_route(self.store, route, should_stop)
        except (ConfigError, NotFound) as failed:
            jobs.finish(job_id, "failed", {}, failed)
            return {"status": "failed", "error": failed.as_dict()}
        shown = {"messages": {"read": counts.sent + counts.refused, "inserted": counts.sent,
                              "dead_lettered": counts.refused}}  # fmt: skip
        if counts.stopped is not None:  # the receiver is unreachable: shown, tried again later
            stopped = MllpPeerUnavailable(str(counts.stopped.get("message", "")))
            jobs.finish(job_id, "failed", shown, stopped)
            return {"status": "failed", **counts.as_dict()}
        jobs.finish(job_id, "succeeded", shown)
        return {"status": "succeeded", **counts.as_dict()}


def routes_to_deliver(store: bootstrap.Store, cool_down_s: float = 30.0) -> list[str]:
    """Routes with messages waiting, no delivery job queued or running, and none that
    failed (the receiver unreachable) within ``cool_down_s``."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    due = []
    for route in DeliveryStore(store.engine).routes_waiting():
        if any(job.kind == JOB for job in store.jobs.active(route)):
            continue
        recent = [
            job for job in store.jobs.latest_ended()
            if job.pipeline == route and job.kind == JOB and job.status == "failed"
            and job.finished_at is not None
            and (now - job.finished_at).total_seconds() < cool_down_s
        ]  # fmt: skip
        if not recent:
            due.append(route)
    return due


__all__ = [
    "JOB",
    "KIND",
    "DeliverJobs",
    "add_route",
    "deliver_request",
    "deliver_route",
    "routes",
    "routes_to_deliver",
]
