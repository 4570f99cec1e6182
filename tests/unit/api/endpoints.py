"""The app's routes as the tests see them: method, path template, sample path, and what
each asks of its caller, read from ``app.routes`` and the routes' dependencies
(``require`` and ``Audit`` name the role they check in ``required_role``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from pacsync.api import deps
from pacsync.domain.access import Role

PUBLIC = "public"  # no credentials at all
SIGNED = "signed"  # no bearer token: the message's signature
Needs = Role | str
# plausible path parameters: ids that look right but name nothing stored
SAMPLES = {
    "name": "county",
    "job_id": "0b6f0e0c",
    "letter_id": "7",
    "conflict_id": "7",
    "source": "crm",
    "webhook_id": "0123456789abcdef",
    "key_id": "0123456789abcdef",
    "level": "study",
    "study": "1.2.840.99.1",
    "series": "1.2.840.99.1.2",
    "instance": "1.2.840.99.1.2.3",
    "sop_uid": "1.2.840.99.1.2.3",
    "frame": "1",
    "frames": "1",
    "tag": "7FE00010",
    "uid": "1.2.840.99.1",
}
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # as the app routes it, /api/v1 included
    needs: Needs
    audit_action: str | None
    integers: frozenset[str]  # the path parameters that are numbers
    validated_body: bool = False  # a JSON body the framework validates before the route runs

    def path(self, values: Mapping[str, str] | None = None) -> str:
        """The template filled with ``values``, else samples that name nothing stored."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            given = (values or {}).get(name) or SAMPLES.get(name)
            return given or ("7" if name in self.integers else "sample")

        return _PARAM.sub(value, self.template)

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.template)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _dependencies(route: APIRoute) -> Iterator[Any]:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        yield dependency.call
        pending += dependency.dependencies


def _needs(route: Any) -> tuple[Needs, str | None]:
    """What a route asks of its caller, and its audit action."""
    if not isinstance(route, APIRoute):  # the OpenAPI document and the Swagger UI
        return PUBLIC, None
    calls = list(_dependencies(route))
    roles = [c.required_role for c in calls if hasattr(c, "required_role")]
    action = next((c.audit_action for c in calls if hasattr(c, "audit_action")), None)
    # a dependency that authenticates in its own way (DICOMweb: keys or viewer links)
    own = any(getattr(c, "authenticates", False) for c in calls)
    if deps.principal in calls or own:
        assert roles, f"{route.path} authenticates but checks no role"
        return max(roles, key=lambda r: r.rank), action
    return (SIGNED if action else PUBLIC), action


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every method of every route of ``app`` but HEAD."""
    found = []
    for context in iter_route_contexts(app.routes):
        template = context.path
        if template is None:
            continue
        route = context.original_route
        needs, action = _needs(route)
        integers = frozenset(
            p.name
            for p in (route.dependant.path_params if isinstance(route, APIRoute) else [])
            if p.field_info.annotation is int
        )
        body = isinstance(route, APIRoute) and bool(route.dependant.body_params)
        for method in sorted((context.methods or set()) - {"HEAD"}):
            found.append(Endpoint(method, template, needs, action, integers, body))
    return found
