"""API key tokens: format, parsing and hashing."""

from __future__ import annotations

import hashlib

import pytest

from pacsync.security import api_keys


def test_issued_token_carries_its_key_id_and_hashes_to_the_stored_hash() -> None:
    issued = api_keys.issue()
    assert issued.token.startswith(f"psk_{issued.key_id}_")
    assert len(issued.token) > 4 + 16 + 1 + 40  # 32 random bytes, base64url
    assert api_keys.parse(issued.token) == issued.key_id
    assert issued.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert api_keys.matches(issued.token, issued.token_hash)
    assert not api_keys.matches(issued.token + "x", issued.token_hash)


def test_every_key_is_different() -> None:
    tokens = {api_keys.issue().token for _ in range(50)}
    assert len(tokens) == 50


@pytest.mark.parametrize(
    "token",
    [
        "",
        "psk_",
        "psk_0123456789abcdef",
        "psk_0123456789abcdef_",
        "psk_0123456789ABCDEF_secret",
        "psk_0123_secret",
        "pk_0123456789abcdef_secret",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ],
)
def test_malformed_tokens_have_no_key_id(token: str) -> None:
    assert api_keys.parse(token) is None


def test_a_secret_with_underscores_still_parses() -> None:
    assert api_keys.parse("psk_0123456789abcdef_a_b_c") == "0123456789abcdef"
