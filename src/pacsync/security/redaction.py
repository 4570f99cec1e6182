"""Keeping secrets out of logs: a logging filter that masks known secrets and patterns.

Masked with ``***``: every secret handed to :func:`remember` (the secret box
remembers each secret it opens), passwords in URLs (``://user:***@``), bearer
tokens, ``psk_`` API keys, ``whsec_`` webhook secrets and ``password=`` pairs.
"""

from __future__ import annotations

import logging
import re
import threading
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

    Arguments are masked one by one and stay arguments, so formatters that read
    them (uvicorn's access log does) keep working. Only when a secret shows in
    the formatted message alone (split between the format string and an
    argument) is the message replaced by its masked, formatted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: mask the parts as they are
            message = f"{record.msg} {record.args}"
            record.msg, record.args = redact(message), ()
        else:
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _masked(value: Any) -> Any:
    """An argument as it may be logged: itself, or its masked text if that hid a secret."""
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    masked = redact(text)
    return value if masked == text else masked


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
