"""Secrets at rest: AES-256-GCM with a random 96-bit nonce, ``enc:v1:`` text.

The field a secret belongs to (its *context*, e.g. ``connection:legacy``) is
bound in as associated data, so a sealed value copied into another field does
not open.  The key comes from ``PACSYNC_SECRET_KEY`` or from
``$PACSYNC_HOME/secret.key``, which is created on first use readable by its
owner only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pacsync.config import Settings
from pacsync.errors import ConfigError
from pacsync.security import redaction

PREFIX = "enc:v1:"
KEY_FILE = "secret.key"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEY_HINT = (
    "Set PACSYNC_SECRET_KEY to 32 random bytes, base64 or hex "
    "(e.g. `openssl rand -base64 32`), or remove it to use $PACSYNC_HOME/secret.key."
)

log = logging.getLogger(__name__)


def is_sealed(text: str | None) -> bool:
    """Whether ``text`` is sealed by a secret box (``enc:v1:…``)."""
    return text is not None and text.startswith(PREFIX)


class SecretBox:
    """Seals and opens short secrets (passwords, webhook secrets) with one 256-bit key."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key = key
        self._cipher: AESGCM | None = None
        if isinstance(key, bytes):
            self._aead()

    def __repr__(self) -> str:
        return "SecretBox(***)"

    @classmethod
    def load(cls, settings: Settings) -> SecretBox:
        """The box of ``PACSYNC_SECRET_KEY``, else of the home folder's key file; the key
        is read (or the file made) when the box is first used."""
        if settings.secret_key:
            configured = settings.secret_key
            return cls(lambda: decode_key(configured, "PACSYNC_SECRET_KEY"))
        home = settings.home
        return cls(lambda: _key_file(home / KEY_FILE))

    def _aead(self) -> AESGCM:
        if self._cipher is None:
            key = self._key if isinstance(self._key, bytes) else self._key()
            if len(key) != _KEY_BYTES:
                raise ConfigError(f"the secret key has {len(key)} bytes, not 32", hint=_KEY_HINT)
            self._cipher = AESGCM(key)
        return self._cipher

    def seal(self, plain: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead().encrypt(nonce, plain.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, sealed: str, context: str) -> str:
        """The plain text; ConfigError (PACS-101) for a wrong key, context or changed text."""
        if not is_sealed(sealed):
            raise ConfigError(
                f"the secret of {context} is not sealed text",
                hint="Set the secret again through pacsync so that it is stored encrypted.",
            )
        body = sealed[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead().decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError, binascii.Error):
            raise ConfigError(
                f"cannot open the secret of {context}: wrong secret key or changed text",
                hint="Use the secret key it was sealed with (PACSYNC_SECRET_KEY or "
                "$PACSYNC_HOME/secret.key), or set the secret again.",
            ) from None
        text = plain.decode("utf-8")
        redaction.remember(text)
        return text


def new_key() -> str:
    """A fresh key, base64 (what the key file and PACSYNC_SECRET_KEY hold)."""
    return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def site_key(settings: Settings) -> bytes:
    """The site's secret key: ``PACSYNC_SECRET_KEY``, else the home folder's key file
    (made on first use)."""
    if settings.secret_key:
        return decode_key(settings.secret_key, "PACSYNC_SECRET_KEY")
    return _key_file(settings.home / KEY_FILE)


def decode_key(text: str, where: str) -> bytes:
    """32 key bytes from hex or base64 (standard or URL-safe) text."""
    value = text.strip()
    try:
        if len(value) == 2 * _KEY_BYTES:
            return bytes.fromhex(value)
        standard = value.replace("-", "+").replace("_", "/")
        decoded = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except ValueError:
        raise ConfigError(f"{where} is neither hex nor base64", hint=_KEY_HINT) from None
    if len(decoded) != _KEY_BYTES:
        raise ConfigError(f"{where} holds {len(decoded)} bytes, not 32", hint=_KEY_HINT)
    return decoded


def _key_file(path: Path) -> bytes:
    """The key in ``path``, created (0600, atomically) when there is none."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    draft = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the secret key file {path}: {exc.strerror}", hint=_KEY_HINT
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_key() + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made the key meanwhile
            os.link(draft, path)  # the key file appears whole or not at all
    finally:
        draft.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the secret key file {path}: {exc}", hint=_KEY_HINT) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others (mode %o); chmod 600 it", path, mode & 0o777)
    return decode_key(text, str(path))
