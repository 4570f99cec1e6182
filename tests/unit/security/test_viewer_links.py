"""Signed viewer links: bound to one study, expiring, verified by any process holding the
site's secret key and by no other."""

from __future__ import annotations

import pytest

from pacsync.errors import AuthenticationFailed
from pacsync.security.viewer_links import PREFIX, ViewerLinks

KEY = bytes(range(32))
NOW = 1_800_000_000.0


def test_a_link_names_its_study_and_who_asked_for_it() -> None:
    links = ViewerLinks(KEY)
    token = links.issue("1.2.3", "key:abc", 600, now=NOW)
    assert token.startswith(PREFIX)
    link = ViewerLinks(KEY).verify(token, now=NOW + 599)  # another process, the same key
    assert (link.study_uid, link.issued_to, link.expires_at) == ("1.2.3", "key:abc", NOW + 600)
    assert links.issue("1.2.3", "key:abc", 600, now=NOW) != token  # each link its own id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t, "the viewer link has expired"),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature does not match"),
        (lambda t: t.replace(PREFIX, "psk_"), "not a viewer link token"),
        (lambda t: t.split(".")[0], "not a viewer link token"),
        (lambda t: t.replace(".", "é."), "not a viewer link token"),  # not ASCII: no 500
    ],
)
def test_expired_forged_and_mangled_links_are_refused(change: object, reason: str) -> None:
    links = ViewerLinks(KEY)
    token = links.issue("1.2.3", "key:abc", 600, now=NOW)
    with pytest.raises(AuthenticationFailed, match=reason):
        links.verify(change(token), now=NOW + 600)  # type: ignore[operator]


def test_a_link_of_another_site_does_not_verify() -> None:
    token = ViewerLinks(bytes(32)).issue("1.2.3", "key:abc", 600, now=NOW)
    with pytest.raises(AuthenticationFailed, match="signature"):
        ViewerLinks(KEY).verify(token, now=NOW)
    assert "***" in repr(ViewerLinks(KEY))
