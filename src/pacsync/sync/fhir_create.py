"""Creating on the FHIR server a record held only here, without making a twin.

A record with an identifier is created only after a search by that identifier found no
record of another id holding it (such a twin waits in the conflicts store as
``(identifier)`` for a person), and then as a conditional update on the identifier, so
one made meanwhile is not written twice either.  Part of :class:`FhirSync`.
"""

from __future__ import annotations

from collections.abc import Callable

from pacsync.domain.fhir_conflicts import elements
from pacsync.errors import FhirPreconditionFailed, FhirRequestRejected
from pacsync.ports import FhirServer, SyncDecision
from pacsync.sync.fhir_request import JSON, TypeRun, whole_resource

TWIN = "(identifier)"  # the field of a new record whose identifier the server holds already


class CreatesOnServer:
    """The creation steps of :class:`pacsync.sync.fhir_sync.FhirSync`, which provides
    the server, the change callback and the conflict decisions."""

    server: FhirServer
    _changed: Callable[[str, str, str, str], None]
    _decided: Callable[[TypeRun, str, list[JSON]], SyncDecision | None]

    def _may_create(self, run: TypeRun, rid: str, held: JSON) -> str | bool:
        """Whether a record new here may be created on the server: not when the server
        holds its identifier under another id (search, then create: the same patient is
        not written twice).  Such a twin waits in the conflicts store as ``(identifier)``;
        a decision for the local side (use_local) creates it all the same.  When it may,
        the ``system|value`` the create is to be conditional on (True: none)."""
        criteria = identifier_criteria(held)
        if criteria is None:
            return True
        twins = self._twins(run.rtype, rid, criteria)
        if not twins:
            return criteria
        return self._twin_decided(run, rid, held, twins)

    def _twins(self, rtype: str, rid: str, criteria: str) -> list[str]:
        found = self.server.search(rtype, [("identifier", criteria)])
        return sorted(str(r.get("id")) for r in found if r.get("id") != rid)

    def _twin_decided(self, run: TypeRun, rid: str, held: JSON, twins: list[str]) -> bool:
        mine = {"id": rid, "identifier": held.get("identifier")}
        fields = [{"field": TWIN, "local": mine, "remote": {"ids": twins}, "base": None}]
        decision = self._decided(run, rid, fields)
        if decision is None:
            return False
        value = decision.value if isinstance(decision.value, dict) else {}
        if value.get(TWIN) == mine:
            return True
        run.counts.unchanged += 1  # decided: the server's record is this one
        return False

    def _create(self, run: TypeRun, rid: str, held: JSON, guard: str | bool) -> bool:
        """Create the record on the server at its id; with ``guard`` (an identifier) as a
        conditional update on it (``PUT Type?identifier=…``: the server creates it only
        if no record of another id holds the identifier, atomically).  A server that
        refuses the conditional write is searched again: a twin made since is left to a
        decision (False), else the record is written by a plain PUT."""
        rtype = run.rtype
        whole = whole_resource(rtype, rid, elements(held))
        if isinstance(guard, str):
            try:
                self.server.conditional_update(whole, [("identifier", guard)])
            except (FhirRequestRejected, FhirPreconditionFailed):
                twins = self._twins(rtype, rid, guard)
                if twins and not self._twin_decided(run, rid, held, twins):
                    return False
                self.server.update(whole)
        else:
            self.server.update(whole)
        self._changed(rtype, rid, "outbound", "created")
        return True


def identifier_criteria(resource: JSON) -> str | None:
    """``system|value`` of the resource's first identifier that has both."""
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
            return f"{identifier['system']}|{identifier['value']}"
    return None
