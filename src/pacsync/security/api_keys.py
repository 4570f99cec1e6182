"""API keys: ``psk_<key_id>_<secret>``; only the SHA-256 of the whole token is stored.

The key id travels in the token, so a presented key is looked up by id and its
hash compared in constant time; the secret itself is never kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "psk_"
_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    token: str  # shown once to whoever created the key
    token_hash: str


def issue() -> IssuedKey:
    """A new key: a random id, 256 random bits of secret, and the token's hash."""
    key_id = secrets.token_hex(8)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(key_id=key_id, token=token, token_hash=hash_token(token))


def hash_token(token: str) -> str:
    """SHA-256 of the token, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse(token: str) -> str | None:
    """The key id of a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not secret or not _KEY_ID.fullmatch(key_id):
        return None
    return key_id


def matches(token: str, token_hash: str) -> bool:
    """Whether ``token`` hashes to ``token_hash``, compared in constant time."""
    return hmac.compare_digest(hash_token(token), token_hash)
