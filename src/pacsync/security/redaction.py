"""Keeping secrets out of logs: a logging filter that masks known secrets and patterns.

Masked with ``***``: every secret handed to :func:`remember` (the secret box
remembers each secret it opens), passwords in URLs (``://user:***@``), bearer
tokens, ``psk_`` API keys, ``whsec_`` webhook secrets and ``password=`` pairs.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(://[^:/@\s]*:)[^@\s/]+(@)"), rf"\g<1>{MASK}\g<2>"),
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), rf"\g<1>{MASK}"),
    (re.compile(r"\b(psk_[0-9a-f]{16}_)[A-Za-z0-9_\-]+"), rf"\g<1>{MASK}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_\-]+"), f"whsec_{MASK}"),
    (re.compile(r"\b(password|passwd|pwd)=[^\s&;,]+", re.IGNORECASE), rf"\g<1>={MASK}"),
]

_remembered: set[str] = set()
_lock = threading.Lock()
_DEFAULT_LOGGERS = ("pacsync", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy")


def remember(secret: str | None) -> None:
    """Mask ``secret`` wherever it appears in a log record from now on."""
    if secret and len(secret) >= MIN_LENGTH:
        with _lock:
            _remembered.add(secret)


def redact(text: str) -> str:
    """``text`` with remembered secrets and secret-looking patterns masked."""
    with _lock:
        known = sorted(_remembered, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, its arguments and its traceback text.

    The message is formatted with its arguments first, so a secret split between
    the format string and an argument is masked too; ``args`` is then empty.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: mask the parts as they are
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(*names: str) -> RedactingFilter:
    """Add one filter to the root logger, the named loggers (pacsync, uvicorn, sqlalchemy
    by default) and all their handlers; records from child loggers pass the handlers."""
    targets = [logging.getLogger(), *(logging.getLogger(n) for n in names or _DEFAULT_LOGGERS)]
    shared = next(
        (f for t in targets for f in t.filters if isinstance(f, RedactingFilter)),
        RedactingFilter(),
    )
    for logger in targets:
        for filterer in (logger, *logger.handlers):
            if not any(isinstance(f, RedactingFilter) for f in filterer.filters):
                filterer.addFilter(shared)
    return shared
