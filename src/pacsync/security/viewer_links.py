"""Signed viewer links: a short-lived token bound to one study, carried in a viewer's URL
so the viewer opens that study without a login.

``pvl_<payload>.<signature>``: the payload (base64url JSON) names the study, the
expiry (``exp``, epoch seconds), who asked for the link (``sub``) and a random id;
the signature is HMAC-SHA256 with a key derived from the site's secret key
(``PACSYNC_SECRET_KEY`` or ``$PACSYNC_HOME/secret.key``), so every API process of a
site verifies the links any of them issued.  A link reads DICOMweb of its study only,
as a viewer, until it expires (``PACSYNC_VIEWER_LINK_MINUTES``, 60 by default).

This module only signs and verifies.  The API records each link it issues by its id
(:mod:`pacsync.db.viewer_links`), so a link can be revoked before it expires; the
DICOMweb routes refuse a revoked one (:mod:`pacsync.api.dicomweb_access`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from pacsync.config import Settings
from pacsync.errors import AuthenticationFailed
from pacsync.security import secrets as site_secrets

PREFIX = "pvl_"
_CONTEXT = b"pacsync viewer link v1"
HINT = "Ask for a new viewer link: GET /api/v1/studies/{uid}/viewer."


@dataclass(frozen=True)
class ViewerLink:
    study_uid: str
    expires_at: int  # epoch seconds
    issued_to: str  # the subject that asked for it
    link_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ViewerLinks:
    """Issues and verifies viewer link tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, _CONTEXT, hashlib.sha256).digest()

    @classmethod
    def load(cls, settings: Settings) -> ViewerLinks:
        """The links of the site's secret key (the key file is made on first use)."""
        return cls(site_secrets.site_key(settings))

    def __repr__(self) -> str:
        return "ViewerLinks(***)"

    def issue(
        self, study_uid: str, issued_to: str, lifetime_s: int, now: float | None = None
    ) -> str:
        return self.issued(study_uid, issued_to, lifetime_s, now)[0]

    def issued(
        self, study_uid: str, issued_to: str, lifetime_s: int, now: float | None = None
    ) -> tuple[str, ViewerLink]:
        """A new link's token and what it carries (its id is what a revocation names)."""
        link = ViewerLink(
            study_uid,
            int((time.time() if now is None else now) + lifetime_s),
            issued_to,
            secrets.token_hex(8),
        )
        payload = {
            "s": link.study_uid,
            "exp": link.expires_at,
            "sub": issued_to,
            "id": link.link_id,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{PREFIX}{body}.{self._sign(body)}", link

    def verify(self, token: str, now: float | None = None) -> ViewerLink:
        """The link of ``token``; AuthenticationFailed when forged, mangled or expired."""
        if not token.startswith(PREFIX) or token.count(".") != 1 or not token.isascii():
            raise AuthenticationFailed("not a viewer link token", hint=HINT)
        body, signature = token[len(PREFIX) :].split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise AuthenticationFailed("the viewer link's signature does not match", hint=HINT)
        try:
            payload = json.loads(_unb64(body))
            link = ViewerLink(
                str(payload["s"]), int(payload["exp"]), str(payload["sub"]), str(payload["id"])
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise AuthenticationFailed("the viewer link is malformed", hint=HINT) from None
        if link.expires_at <= (time.time() if now is None else now):
            raise AuthenticationFailed("the viewer link has expired", hint=HINT)
        return link

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())
