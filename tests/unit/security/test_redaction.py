"""Secrets never reach a log line: remembered values and secret-looking patterns are masked."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pacsync.security import redaction
from pacsync.security.redaction import RedactingFilter, install, redact, remember


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "connect postgresql+psycopg://sync:p%40ss@db:5432/x failed",
            "connect postgresql+psycopg://sync:***@db:5432/x failed",
        ),
        ("http://host:8080/path@v2", "http://host:8080/path@v2"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-_", "Authorization: Bearer ***"),
        ("key psk_0123456789abcdef_AbC-d_e rejected", "key psk_0123456789abcdef_*** rejected"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw= set", "secret whsec_*** set"),
        ("host=db password=hunter2 user=x", "host=db password=*** user=x"),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
def test_secret_looking_patterns_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_remembered_secrets_are_masked_anywhere() -> None:
    remember("Tr0ub4dor&3")
    remember("ab")  # too short to mask without garbling ordinary words
    assert redact("login with Tr0ub4dor&3 as ab") == "login with *** as ab"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger = logging.getLogger("pacsync.tests.redaction")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)
    logger.propagate = True


def test_the_filter_masks_message_arguments_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = captured
    remember("s3cr3t-value")
    logger.warning("token %s for %s", "Bearer abc.def", "mysql://u:pw@db/x")
    logger.warning("dict args %(pw)s", {"pw": "s3cr3t-value"})
    try:
        raise RuntimeError("failed with s3cr3t-value")
    except RuntimeError:
        logger.exception("while connecting to %s", "postgresql://u:pw@db/x")
    text = out.getvalue()
    assert "s3cr3t-value" not in text
    assert ":pw@" not in text
    assert "abc.def" not in text
    assert "token Bearer *** for mysql://u:***@db/x" in text
    assert "RuntimeError: failed with ***" in text


def test_a_broken_format_is_still_logged_and_masked(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = captured
    logger.warning("%d items for %s", "not-a-number", "http://u:pw@x")
    assert "u:***@x" in out.getvalue()


@pytest.fixture
def installed() -> Iterator[None]:
    """``install()`` for one test; the logging set-up is put back afterwards."""
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    handlers = [h for t in (logging.getLogger(), logging.getLogger("pacsync")) for h in t.handlers]
    for filterer in [
        logging.getLogger(),
        *(logging.getLogger(n) for n in redaction._DEFAULT_LOGGERS),
        *handlers,
        logging.lastResort,
    ]:
        if filterer is None:
            continue
        for f in [f for f in filterer.filters if isinstance(f, RedactingFilter)]:
            filterer.removeFilter(f)


@pytest.mark.usefixtures("installed")
def test_install_covers_child_loggers_and_is_idempotent() -> None:
    root = logging.getLogger()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root.addHandler(handler)
    try:
        first = install("pacsync")
        second = install("pacsync")
        assert first is second
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        assert logging.lastResort is not None
        assert first in logging.lastResort.filters
        child = logging.getLogger("pacsync.db.connections")
        child.warning("opened postgresql://sync:hunter22@db/x")
        assert "sync:***@db" in out.getvalue()
        assert "hunter22" not in out.getvalue()
    finally:
        root.removeHandler(handler)


@pytest.mark.usefixtures("installed")
def test_handlers_configured_after_install_get_masked_records() -> None:
    install()
    out = io.StringIO()
    late = logging.StreamHandler(out)  # as uvicorn's logging config adds its own
    logger = logging.getLogger("thirdparty.client")
    logger.addHandler(late)
    logger.propagate = False
    try:
        logger.warning("calling %s", "https://u:pa55word@api.example/")
        logger.error("key %s", "psk_0123456789abcdef_secretpart")
    finally:
        logger.removeHandler(late)
        logger.propagate = True
    assert out.getvalue().splitlines() == [
        "calling https://u:***@api.example/",
        "key psk_0123456789abcdef_***",
    ]


def test_arguments_stay_a_tuple_for_formatters_that_read_them() -> None:
    """uvicorn's access formatter unpacks ``record.args``: masking must keep its shape."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/jobs?token=psk_0123456789abcdef_S3cretPart", "1.1", 200),
        None,
    )
    RedactingFilter().filter(record)
    assert isinstance(record.args, tuple)
    assert len(record.args) == 5
    client, method, _path, version, status = record.args
    assert (client, method, version, status) == ("127.0.0.1:5000", "GET", "1.1", 200)
    assert "S3cretPart" not in record.getMessage()


def test_a_secret_split_across_format_and_argument_is_masked_in_the_message() -> None:
    remember("split-secret-value-123")
    record = logging.LogRecord(
        "pacsync", logging.INFO, __file__, 1, "value split-secret-%s", ("value-123",), None
    )
    RedactingFilter().filter(record)
    assert "split-secret-value-123" not in record.getMessage()


def test_a_record_without_secrets_is_left_as_it_was() -> None:
    args = ("GET", "/api/v1/health", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s %s %d", args, None)
    RedactingFilter().filter(record)
    assert (record.msg, record.args) == ("%s %s %d", args)


def test_a_secret_inside_an_argument_that_is_not_text_is_masked() -> None:
    error = ValueError("cannot connect to postgresql://sync:hunter22@db/x")
    record = logging.LogRecord("pacsync", logging.ERROR, __file__, 1, "failed: %s", (error,), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "failed: cannot connect to postgresql://sync:***@db/x"
