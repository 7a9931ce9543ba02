"""The live page at / in a real Chromium: renders the feed, updates live, shows hostile text
as text."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.liveserver import asgi_server

CHROMIUM = "/usr/bin/chromium"
HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
]


@pytest.fixture
def server(transactional_db):
    with asgi_server() as url:
        yield url


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        yield browser
        browser.close()


def _deliver(server: str, claim: str) -> dict:
    envelope = EnvelopeFactory(event=MilestoneEventFactory(claim=claim, nextAction=claim))
    body, headers = signed(envelope)
    response = httpx.post(f"{server}/internal/milestones/ingest", content=body, headers=headers)
    assert response.json()["status"] == "accepted"
    return envelope


def _assert_not_executed(page) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#feed img, #feed script").count() == 0


def test_page_renders_stored_milestones_with_hostile_text_as_text(server, browser):
    for claim in HOSTILE:
        _deliver(server, claim)
    page = browser.new_page()
    page.goto(server + "/")
    claims = page.locator("#feed .claim").all_inner_texts()
    assert sorted(claims) == sorted(HOSTILE)
    _assert_not_executed(page)


def test_page_shows_a_new_milestone_live_without_reload(server, browser):
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_selector("#status[data-state=live]")
    page.evaluate("window.__sameDocument = true")
    for claim in HOSTILE:
        _deliver(server, claim)
    page.wait_for_function("document.querySelectorAll('#feed li.milestone').length === 2")
    claims = page.locator("#feed .claim").all_inner_texts()
    assert claims == list(reversed(HOSTILE))  # newest on top
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    _assert_not_executed(page)
