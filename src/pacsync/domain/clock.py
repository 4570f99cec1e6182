"""The store's clock convention: naive datetimes in UTC."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """Now, as a naive UTC datetime (how the store keeps times)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
