"""Shared fixtures. The database is always a real PostgreSQL (embedded or DATABASE_URL)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token


@pytest.fixture
def operator(db):
    """A staff user in the ``operators`` group, as an operator would be set up."""
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("operator", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="operators"))
    return user


@pytest.fixture
def operator_token(operator) -> str:
    return Token.objects.create(user=operator).key


@pytest.fixture
def browser(monkeypatch):
    """A headless Chromium (tests/browser.py), closed after the test."""
    from tests.browser import ARGS, CHROMIUM

    # Playwright's sync API runs an event loop in this thread; the test's own database
    # calls are synchronous all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()
