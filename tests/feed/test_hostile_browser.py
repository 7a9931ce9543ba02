"""The corpus's SQL and markup milestones, in a real Chromium: inert on the live page (both
rendered by the server and added live) and in the admin, shown as literal text.

The ``content`` cases of tests/data/hostile_requests.json put the same payload in every
free-text field, key and unknown field of an otherwise valid envelope.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model

from tests import hostile_corpus
from tests.browser import BROWSER_MARKS
from tests.liveserver import asgi_server

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.timeout(600),
    pytest.mark.django_db(transaction=True),
]

CONTENT = [c for c in hostile_corpus.cases() if c["class"] == "content"]

#: Elements carrying an event-handler attribute, and scripts, frames and images other
#: than the project's own static ones, in an area of the page: markup that became elements.
INJECTED = """(root) => [...document.querySelectorAll(root + ' *')].filter(e =>
    [...e.attributes].some(a => a.name.startsWith('on'))
    || (['SCRIPT', 'IFRAME', 'IMG', 'svg', 'OBJECT', 'EMBED'].includes(e.tagName)
        && !(e.getAttribute('src') || '').startsWith('/static/'))
).map(e => e.outerHTML.slice(0, 200))"""


@pytest.fixture
def server():
    with asgi_server() as url:
        yield url




def _page(browser, dialogs: list[str]):
    page = browser.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return page


def _deliver(server: str, cases: list[dict]) -> None:
    parts = urlsplit(server)
    for case in cases:
        request = hostile_corpus.prepare(case, host=parts.netloc)
        answer = hostile_corpus.send((parts.hostname, parts.port), request)
        assert answer.json()["status"] == "accepted", (case["name"], answer.body[:300])


def _payloads(cases: list[dict]) -> list[str]:
    return [c["expect"]["payload"] for c in cases]


def _assert_literal(page, root: str, texts: list[str]) -> None:
    shown = page.locator(root).text_content()
    missing = [t for t in texts if t not in shown]
    assert not missing, missing
    assert page.evaluate(INJECTED, root) == []


def test_the_live_page_shows_hostile_milestones_as_text_rendered_and_live(server, browser):
    half = len(CONTENT) // 2
    _deliver(server, CONTENT[:half])
    dialogs: list[str] = []
    page = _page(browser, dialogs)
    page.goto(server + "/")
    page.wait_for_selector("#status[data-state=live]")
    _assert_literal(page, "#feed", _payloads(CONTENT[:half]))  # rendered by the server
    _deliver(server, CONTENT[half:])
    from playwright.sync_api import expect

    # A locator waits without evaluating a string (the page's CSP forbids eval)
    expect(page.locator("#feed li.milestone")).to_have_count(len(CONTENT))
    _assert_literal(page, "#feed", _payloads(CONTENT))  # the rest added live
    _screenshot(page, "hostile-live-page.png")
    assert dialogs == []


@pytest.fixture
def superuser():
    # Before the browser starts: Playwright's sync API runs an event loop in this thread.
    return get_user_model().objects.create_superuser("admin", password="pw")


def test_the_admin_shows_hostile_milestones_as_text(server, superuser, browser):
    _deliver(server, CONTENT)
    dialogs: list[str] = []
    page = _page(browser, dialogs)
    page.goto(server + "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#content")
    page.goto(server + "/admin/feed_app/feeditem/")
    assert page.evaluate(INJECTED, "#content") == []
    _screenshot(page, "hostile-admin-changelist.png")
    for case in CONTENT:
        item = _item(server, case["envelope"]["idempotencyKey"])
        page.goto(f"{server}/admin/feed_app/feeditem/{item['position']}/change/")
        _assert_literal(page, "#content", [item["milestoneId"], item["scope"]])
    assert dialogs == []


def _item(server: str, key: str) -> dict:
    response = httpx.get(f"{server}/api/milestones/{quote(key, safe='')}", timeout=30)
    return response.json()["item"]


def _screenshot(page, name: str) -> None:
    """Keep a screenshot for a person to look at when CLAWDBOT_SCREENSHOTS names a folder."""
    folder = os.environ.get("CLAWDBOT_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, name), full_page=True)
