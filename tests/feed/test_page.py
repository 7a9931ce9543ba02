"""The live page at / in a real Chromium: renders the feed, updates live, shows hostile text
as text."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import BROWSER_MARKS
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.liveserver import asgi_server

HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
]

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def server(transactional_db):
    with asgi_server() as url:
        yield url




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
    from playwright.sync_api import expect

    # A locator waits without evaluating a string (the page's CSP forbids eval)
    expect(page.locator("#feed li.milestone")).to_have_count(2)
    claims = page.locator("#feed .claim").all_inner_texts()
    assert claims == list(reversed(HOSTILE))  # newest on top
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    _assert_not_executed(page)
