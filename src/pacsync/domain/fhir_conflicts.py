"""Three-way compare and conflict resolution of a FHIR resource held on two sides.

``compare`` puts each top-level element of a resource (a list is compared whole)
in one of four groups by what each side did since the base version, the one both
sides agreed on at the last sync: changed locally only, changed remotely only,
changed on both sides to the same value, or conflicting.  ``meta``, ``id``,
``resourceType`` and ``text`` are the server's bookkeeping and never compared.

``resolve`` settles a compare by a :class:`ConflictPolicy`:

- when no element conflicts, the changes of both sides merge, whatever the strategy;
- an auto-resolution :class:`Rule` (``telecom`` from the remote side always wins)
  settles its element wherever the sides differ, before any strategy;
- then, for the elements still conflicting:

  ``last-write-wins``  the side updated last (``meta.lastUpdated``) wins whole
                       (the remote side on a tie or without time stamps);
  ``local-wins`` / ``remote-wins``  source priority: that side wins whole;
  ``field-merge``      elements changed on one side merge, the conflicting ones are
                       decided one by one by the policy's ``fallback``;
  ``manual``           nothing is written: the conflicting elements wait for review.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pacsync.errors import ConfigError

JSON = dict[str, Any]
Side = Literal["local", "remote"]
SIDES: tuple[Side, ...] = ("local", "remote")
BOOKKEEPING = frozenset({"meta", "id", "resourceType", "text"})


class _Missing:
    """An element a resource does not have (told apart from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Strategy(StrEnum):
    LAST_WRITE_WINS = "last-write-wins"
    LOCAL_WINS = "local-wins"
    REMOTE_WINS = "remote-wins"
    FIELD_MERGE = "field-merge"
    MANUAL = "manual"

    @classmethod
    def parse(cls, value: str) -> Strategy:
        try:
            return cls(value.strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise ConfigError(
                f"unknown sync conflict strategy {value!r}", hint=f"Use one of: {valid}."
            ) from None


@dataclass(frozen=True)
class Comparison:
    """Top-level elements by what each side did to them since the base version."""

    local_only: tuple[str, ...] = ()
    remote_only: tuple[str, ...] = ()
    both_same: tuple[str, ...] = ()
    conflicting: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not (self.local_only or self.remote_only or self.both_same or self.conflicting)


def elements(resource: Mapping[str, Any] | None) -> dict[str, Any]:
    """The compared elements of a resource (bookkeeping left out)."""
    return {k: v for k, v in (resource or {}).items() if k not in BOOKKEEPING}


def compare(
    base: Mapping[str, Any] | None, local: Mapping[str, Any], remote: Mapping[str, Any]
) -> Comparison:
    """Each element of ``local`` and ``remote`` against ``base``.  Without a base (the
    record was never synced) every element the sides hold differently conflicts."""
    b, lo, re = elements(base), elements(local), elements(remote)
    groups: dict[str, list[str]] = {"lo": [], "re": [], "same": [], "both": []}
    for name in sorted({*b, *lo, *re}):
        was, mine, theirs = b.get(name, MISSING), lo.get(name, MISSING), re.get(name, MISSING)
        if base is None:
            if mine != theirs:
                groups["both"].append(name)
            continue
        changed_here, changed_there = mine != was, theirs != was
        if changed_here and changed_there:
            groups["same" if mine == theirs else "both"].append(name)
        elif changed_here:
            groups["lo"].append(name)
        elif changed_there:
            groups["re"].append(name)
    return Comparison(
        tuple(groups["lo"]), tuple(groups["re"]), tuple(groups["same"]), tuple(groups["both"])
    )


@dataclass(frozen=True)
class Rule:
    """``element`` of ``resource_type`` (None: of every type) is always ``wins``'s."""

    element: str
    wins: Side
    resource_type: str | None = None

    def applies(self, resource_type: str, element: str) -> bool:
        return element == self.element and self.resource_type in (None, resource_type)


@dataclass(frozen=True)
class ConflictPolicy:
    strategy: Strategy = Strategy.MANUAL
    fallback: Strategy = Strategy.MANUAL  # field-merge's decision for conflicting elements
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        if self.fallback is Strategy.FIELD_MERGE:
            raise ConfigError(
                "field-merge cannot be its own fallback",
                hint="Use last-write-wins, local-wins, remote-wins or manual.",
            )

    def rule_for(self, resource_type: str, element: str) -> Rule | None:
        return next((r for r in self.rules if r.applies(resource_type, element)), None)


def rules_from(config: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None) -> tuple[Rule, ...]:
    """Rules from configuration: ``{telecom: remote}``, ``{Patient.telecom: remote}``, or a
    list of ``{element, wins, resource}``."""
    if not config:
        return ()
    entries: list[tuple[str, Any, Any]]
    if isinstance(config, Mapping):
        entries = [(str(k), v, None) for k, v in config.items()]
    else:
        entries = []
        for entry in config:
            if not isinstance(entry, Mapping) or "element" not in entry:
                raise ConfigError(
                    f"auto-resolution rule {entry!r} needs an element",
                    hint="Write each as {element: telecom, wins: remote, resource: Patient}.",
                )
            entries.append((str(entry["element"]), entry.get("wins"), entry.get("resource")))
    rules = []
    for name, wins, resource in entries:
        if wins not in SIDES:
            raise ConfigError(
                f"auto-resolution rule for {name!r}: wins must be local or remote, not {wins!r}"
            )
        kind, dot, element = name.rpartition(".")
        rules.append(
            Rule(element if dot else name, wins, str(resource) if resource else (kind or None))
        )
    return tuple(rules)


@dataclass(frozen=True)
class Resolution:
    """What a compare settled on: ``resource`` the agreed elements (bookkeeping from the
    side that holds the most recent ones left to the writer), or None when ``conflicting``
    elements wait for review; ``decided`` says how each contested element was decided."""

    resource: JSON | None
    comparison: Comparison
    conflicting: tuple[str, ...] = ()
    decided: dict[str, str] = field(default_factory=dict)

    @property
    def needs_review(self) -> bool:
        return self.resource is None

    def differs_from(self, side: Mapping[str, Any]) -> bool:
        """True when ``side`` must be written to hold the agreed resource."""
        return self.resource is not None and elements(self.resource) != elements(side)


def last_updated(resource: Mapping[str, Any]) -> dt.datetime | None:
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(text, str) or not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def later_side(local: Mapping[str, Any], remote: Mapping[str, Any]) -> Side:
    """The side updated last; the remote side on a tie or when a time is unknown."""
    mine, theirs = last_updated(local), last_updated(remote)
    if mine is not None and theirs is not None and mine > theirs:
        return "local"
    return "remote"


def _assemble(names: Sequence[str], pick: Mapping[str, Side], sides: dict[Side, JSON]) -> JSON:
    merged: JSON = {}
    for name in names:
        value = sides[pick[name]].get(name, MISSING)
        if value is not MISSING:
            merged[name] = copy.deepcopy(value)
    return merged


def resolve(
    resource_type: str,
    base: Mapping[str, Any] | None,
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    policy: ConflictPolicy,
) -> Resolution:
    """Settle ``local`` against ``remote`` (see the module docstring)."""
    comparison = compare(base, local, remote)
    sides: dict[Side, JSON] = {"local": elements(local), "remote": elements(remote)}
    names = sorted({*sides["local"], *sides["remote"]})
    pick: dict[str, Side] = dict.fromkeys(names, "remote")
    pick.update(dict.fromkeys(comparison.local_only, "local"))
    decided: dict[str, str] = {}
    for name in names:
        rule = policy.rule_for(resource_type, name)
        if rule is not None and sides["local"].get(name, MISSING) != sides["remote"].get(
            name, MISSING
        ):
            pick[name] = rule.wins
            decided[name] = f"rule: {rule.wins} wins"
    open_ = [n for n in comparison.conflicting if n not in decided]
    if open_:
        strategy = policy.strategy
        if strategy is Strategy.FIELD_MERGE:
            strategy = policy.fallback
            whole = False
        else:
            whole = True
        if strategy is Strategy.MANUAL:
            return Resolution(None, comparison, tuple(open_), decided)
        winner: Side = (
            later_side(local, remote)
            if strategy is Strategy.LAST_WRITE_WINS
            else "local"
            if strategy is Strategy.LOCAL_WINS
            else "remote"
        )
        contested = [n for n in names if n not in decided] if whole else open_
        for name in contested:
            agreed = sides["local"].get(name, MISSING) == sides["remote"].get(name, MISSING)
            if whole and agreed:
                continue
            pick[name] = winner
            decided[name] = f"{strategy.value}: {winner}"
    return Resolution(_assemble(names, pick, sides), comparison, (), decided)


def conflict_fields(
    base: Mapping[str, Any] | None,
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    names: Sequence[str],
) -> list[JSON]:
    """The ``{field, local, remote, base}`` entries of a conflict for review (an element
    a side does not hold is None)."""
    b, lo, re = elements(base), elements(local), elements(remote)
    return [{"field": n, "local": lo.get(n), "remote": re.get(n), "base": b.get(n)} for n in names]


__all__ = [
    "MISSING",
    "Comparison",
    "ConflictPolicy",
    "Resolution",
    "Rule",
    "Strategy",
    "compare",
    "conflict_fields",
    "elements",
    "last_updated",
    "later_side",
    "resolve",
    "rules_from",
]
