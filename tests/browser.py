"""Headless Chromium for the browser tests (the dashboard's and the OHIF viewer's).

Debian's ``/usr/bin/chromium`` driven by the python ``playwright`` package: its own
browser download cannot work on these machines.  ``chromium()`` yields a browser
started with the flags ../shared/services.md gives; pages are opened at 1366×768
by ``new_page(browser)``;
a missing Chromium fails under CI and skips elsewhere (tests/availability.py).
Screenshots go to ``screenshot_folder()``: ``PACSYNC_TEST_SCREENSHOTS`` or
``test-output/screenshots`` in the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Error, Page, sync_playwright

from availability import unavailable

CHROMIUM = Path(os.environ.get("PACSYNC_TEST_CHROMIUM", "/usr/bin/chromium"))
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
REPO = Path(__file__).resolve().parents[1]


def screenshot_folder() -> Path:
    folder = Path(os.environ.get("PACSYNC_TEST_SCREENSHOTS", REPO / "test-output" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def chromium(*extra_flags: str) -> Iterator[Browser]:
    """A headless Chromium, closed afterwards; playwright gives each launch a fresh
    profile folder of its own (the ``--user-data-dir`` the flags ask for)."""
    if not CHROMIUM.is_file():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as driver:
        try:
            browser = driver.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=[*FLAGS, *extra_flags]
            )
        except Error as failed:
            unavailable(f"Chromium at {CHROMIUM} did not start: {failed}")
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, *, width: int = 1366, height: int = 768) -> Page:
    """A page in a context of its own (its cookies and storage are not shared)."""
    return browser.new_context(viewport={"width": width, "height": height}).new_page()
