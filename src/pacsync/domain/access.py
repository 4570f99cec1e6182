"""Who is calling and what they may do: roles ordered viewer < operator < admin."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A caller's role; each role includes everything the roles below it may do."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Role | None:
        """The role named ``value`` (any case), or None for an unknown name."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            return None


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``key:<id>`` for an API key, ``jwt:<sub>`` for a token."""

    subject: str
    role: Role
    key_id: str | None = None
    rate_limit_per_min: int | None = None
