"""Browser tests run in Debian's Chromium through Playwright (never a downloaded browser).

A module of browser tests puts ``*BROWSER_MARKS`` in its ``pytestmark`` and asks for the
``browser`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
]


def browser_test(test):
    """``BROWSER_MARKS`` on one test of a module that is not all browser tests."""
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


#: The screenshots the README shows, rewritten by the browser tests that take them.
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def docs_screenshot(page, name: str) -> None:
    """Save the page's full screenshot as docs/img/``name`` (the README shows it)."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / name), full_page=True)
