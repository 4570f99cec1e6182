"""Keeping secrets out of logs: a logging filter that masks known secrets and patterns.

Masked with ``***``: every secret handed to :func:`remember` (the secret box
remembers each secret it opens), passwords in URLs (``://user:***@``), bearer
tokens, ``psk_`` API keys, ``whsec_`` webhook secrets and ``password=`` pairs.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

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

    The format string and each string argument are masked where they are, so
    formatters that read ``args`` (uvicorn's access log unpacks them) keep working.
    Only when a secret survives that (split between the format and an argument,
    or inside a non-string argument) is the message formatted, masked, and its
    arguments dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: log the parts as they are, masked
            record.msg, record.args = redact(f"{record.msg} {record.args}"), None
            message = record.msg
        if redact(message) != message:
            _mask_parts(record)
            try:
                masked = record.getMessage()
            except (TypeError, ValueError):
                masked = message
            if redact(masked) != masked:
                record.msg, record.args = redact(masked), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _mask_parts(record: logging.LogRecord) -> None:
    """Mask the format string and the string arguments, keeping the arguments' shape."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    args = record.args
    if isinstance(args, Mapping):
        record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    elif isinstance(args, tuple):
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)


def install(*names: str) -> RedactingFilter:
    """Mask every log record from now on.

    The filter goes on the root logger, the named loggers (pacsync, uvicorn and
    sqlalchemy by default), their handlers and the last-resort handler; and the
    record factory masks each record as it is made, so records of child loggers
    reach handlers configured later (uvicorn's, say) already masked.
    """
    targets = [logging.getLogger(), *(logging.getLogger(n) for n in names or _DEFAULT_LOGGERS)]
    shared = next(
        (f for t in targets for f in t.filters if isinstance(f, RedactingFilter)),
        RedactingFilter(),
    )
    filterers: list[logging.Filterer] = [h for t in targets for h in t.handlers]
    if logging.lastResort is not None:
        filterers.append(logging.lastResort)
    for filterer in [*targets, *filterers]:
        if not any(isinstance(f, RedactingFilter) for f in filterer.filters):
            filterer.addFilter(shared)
    _mask_new_records(shared)
    return shared


def _mask_new_records(shared: RedactingFilter) -> None:
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        shared.filter(record)
        return record

    make.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
