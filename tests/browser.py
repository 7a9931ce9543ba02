"""Browser tests run in Debian's Chromium through Playwright (never a downloaded browser).

A module of browser tests puts ``*BROWSER_MARKS`` in its ``pytestmark`` and asks for the
``browser`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import os

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
