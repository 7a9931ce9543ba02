"""The live page's operator features in a real Chromium: filters, counts by risk, load older,
relative times, links, and the connection state across a server restart."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from clawdbot.contract import js_iso_timestamp
from feed_app.views import PAGE_SIZE
from tests.browser import BROWSER_MARKS, docs_screenshot
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.liveserver import asgi_server

pytestmark = [*BROWSER_MARKS, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(transactional_db):
    with asgi_server() as url:
        yield url


def _deliver(server: str, **event: str) -> None:
    envelope = EnvelopeFactory(event=MilestoneEventFactory(**event))
    body, headers = signed(envelope)
    response = httpx.post(f"{server}/internal/milestones/ingest", content=body, headers=headers)
    assert response.json()["status"] == "accepted"


def _count(page, risk: str):
    return page.locator(f'.counts a[data-risk="{risk}"] b')


def test_a_risk_filter_shows_only_that_risk_live_and_counts_every_risk(server, browser):
    _deliver(server, riskStatus="blocked", claim="stuck on credentials")
    _deliver(server, riskStatus="on-track", claim="all good")
    page = browser.new_page()
    page.goto(server + "/")
    page.locator("select[name=riskStatus]").select_option("blocked")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_selector("#status[data-state=live]")
    assert page.locator("#feed .claim").all_inner_texts() == ["stuck on credentials"]
    expect(_count(page, "blocked")).to_have_text("1")
    expect(_count(page, "on-track")).to_have_text("1")
    _deliver(server, riskStatus="on-track", claim="still good")
    _deliver(server, riskStatus="blocked", claim="stuck again")
    expect(page.locator("#feed .claim")).to_have_text(["stuck again", "stuck on credentials"])
    expect(_count(page, "on-track")).to_have_text("2")  # counted, not shown
    expect(_count(page, "blocked")).to_have_text("2")
    page.set_viewport_size({"width": 1100, "height": 700})
    docs_screenshot(page, "live-page.png")


def test_a_scope_and_source_filter_and_an_ignored_one_are_told(server, browser):
    _deliver(server, scope="billing", source="agent", claim="billing by an agent")
    _deliver(server, scope="billing", source="operator", claim="billing by hand")
    _deliver(server, scope="search", source="agent", claim="search by an agent")
    page = browser.new_page()
    page.goto(server + "/?scope=billing&source=agent&riskStatus=sideways")
    assert page.locator("#feed .claim").all_inner_texts() == ["billing by an agent"]
    expect(page.locator(".notice")).to_contain_text("riskStatus 'sideways' is not one of")
    page.get_by_role("link", name="clear filters").click()
    expect(page.locator("#feed li.milestone")).to_have_count(3)


def test_load_older_pages_through_next_cursor_to_the_end(server, browser):
    for n in range(PAGE_SIZE + 5):
        _deliver(server, claim=f"milestone {n}",
                 timestampUtc=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z")
    page = browser.new_page()
    page.goto(server + "/")
    expect(page.locator("#feed li.milestone")).to_have_count(PAGE_SIZE)
    page.get_by_role("button", name="Load older").click()
    expect(page.locator("#feed li.milestone")).to_have_count(PAGE_SIZE + 5)
    expect(page.get_by_role("button", name="Load older")).to_be_hidden()
    claims = page.locator("#feed .claim").all_inner_texts()
    assert claims[0] == f"milestone {PAGE_SIZE + 4}" and claims[-1] == "milestone 0"
    assert len(set(claims)) == PAGE_SIZE + 5  # none twice


def test_times_are_relative_with_the_exact_time_on_hover(server, browser):
    _deliver(server, claim="now", timestampUtc=js_iso_timestamp(time.time()))
    _deliver(server, claim="last year", timestampUtc="2025-11-01T08:00:00.000Z")
    page = browser.new_page()
    page.goto(server + "/")
    now, old = page.locator("#feed time").all()
    expect(now).to_have_text(re.compile(r"just now|\d+ min ago"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now.get_attribute("title"))
    expect(old).to_have_text("2025-11-01")
    assert old.get_attribute("title") == "2025-11-01T08:00:00.000Z"
    assert page.get_by_role("link", name="Operations console").get_attribute("href") == "/admin/"
    assert page.get_by_role("link", name="API docs").get_attribute("href") == "/api/docs/"


def test_the_page_shows_the_connection_and_stays_live_after_the_server_restarts(
        transactional_db, browser):
    from tests.liveserver import _free_port

    port = _free_port()
    with asgi_server(port=port) as url:
        page = browser.new_page()
        page.goto(url + "/")
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
    expect(page.locator("#status")).to_have_attribute("data-state",
                                                      re.compile("offline|connecting"))
    with asgi_server(port=port) as url:
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=20000)
        _deliver(url, claim="after the restart")
        expect(page.locator("#feed .claim")).to_have_text(["after the restart"])
