"""When a required server or peer is missing: a failure under CI, a skip elsewhere.

Importable by name from any test folder (``import conftest`` may give another
folder's conftest)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip (saying why) elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the integration servers are required)", pytrace=False)
    pytest.skip(f"{reason} (with CI=true this is a failure)")
