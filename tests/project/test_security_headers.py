"""What a browser or a prober sees of the real server: security headers, no version strings,
and pages that still work under the Content-Security-Policy."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model

from tests.browser import browser_test
from tests.feed.factories import signed
from tests.liveserver import asgi_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAGES = ["/", "/admin/login/", "/api/docs/"]


@pytest.fixture
def server(transactional_db):
    with asgi_server() as url:
        yield url


@pytest.fixture
def superuser(transactional_db):
    """Made before the browser starts (Playwright's sync API runs an event loop)."""
    return get_user_model().objects.create_superuser("root", password="pw")


def test_no_route_names_the_server_and_every_one_sends_the_security_headers(server):
    body, headers = signed()
    with httpx.Client(base_url=server) as client:
        answers = {
            "page": client.get("/"),
            "health": client.get("/api/health"),
            "admin": client.get("/admin/login/"),
            "docs": client.get("/api/docs/"),
            "latest (lean path)": client.get("/api/milestones/latest"),
            "ingest (lean path)": client.post("/internal/milestones/ingest", content=body,
                                              headers=headers),
            "rejected ingest": client.post("/internal/milestones/ingest", content=b"{}",
                                           headers={"content-type": "application/json"}),
            "not found": client.get("/no/such/page"),
        }
    for what, response in answers.items():
        assert "server" not in response.headers, (what, response.headers["server"])
        assert "default-src 'self'" in response.headers["content-security-policy"], what
        assert response.headers["x-content-type-options"] == "nosniff", what
        assert response.headers["referrer-policy"] == "same-origin", what
        assert response.headers["x-frame-options"] == "DENY", what
        for name, value in response.headers.items():
            assert "uvicorn" not in value.lower() and "django" not in value.lower(), (
                what, name, value)
    assert answers["ingest (lean path)"].json()["status"] == "accepted"


@browser_test
def test_the_live_page_the_admin_and_the_api_docs_work_under_the_policy(server, superuser,
                                                                        browser):
    page = browser.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(f"{page.url}: {m.text}")
            if "Content Security Policy" in m.text else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e =>"
                         " console.error('Content Security Policy: ' + e.violatedDirective"
                         " + ' ' + e.blockedURI))")

    page.goto(f"{server}/")
    page.locator('#status[data-state=live]').wait_for()
    body, headers = signed()
    assert httpx.post(f"{server}/internal/milestones/ingest", content=body,
                      headers=headers).json()["status"] == "accepted"
    page.locator("#feed li").first.wait_for()  # the inline script ran: it appended the item

    page.goto(f"{server}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{server}/admin/")
    page.goto(f"{server}/admin/orchestrator_app/target/add/")
    page.locator("#target_form").wait_for()

    page.goto(f"{server}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for()  # the UI's script ran and rendered
    page.locator(".opblock").first.wait_for()
    assert violations == []
