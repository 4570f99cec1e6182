"""Roles are ordered: admin includes operator includes viewer."""

from __future__ import annotations

from pacsync.domain.access import Role


def test_roles_allow_themselves_and_everything_below() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert Role.VIEWER.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.ADMIN)


def test_roles_parse_by_name() -> None:
    assert Role.parse(" Admin ") is Role.ADMIN
    assert Role.parse("superuser") is None
    assert Role("viewer") == "viewer"
