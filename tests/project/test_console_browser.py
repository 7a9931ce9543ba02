"""The operator console in a real Chromium: every screen, and the triage of a dead letter
from the index to delivered, against a live receiver.

Screenshots of the screens are written to docs/img/ (the README shows them).
"""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model

from orchestrator_app.models import Delivery, Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import default_transport
from tests.browser import BROWSER_MARKS, docs_screenshot
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.liveserver import asgi_server
from tests.orchestrator.conftest import Receiver
from tests.orchestrator.factories import TargetFactory

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _outbox_settings(settings):
    settings.MILESTONE_INGEST_URL = ""
    settings.MILESTONE_RETRY_SCHEDULE = "0"


@pytest.fixture
def server(transactional_db):
    with asgi_server({"MILESTONE_INGEST_URL": "", "CLAWDBOT_PIPELINE_MILESTONES": "0"}) as url:
        yield url


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()




@pytest.fixture
def operator_page(server, browser):
    get_user_model().objects.create_superuser("ops", password="ops-pass-1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "ops-pass-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _no_wider_than_the_page(page) -> None:
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_operator_finds_a_dead_letter_in_two_clicks_requeues_it_and_it_is_delivered(
        server, operator_page, receiver):
    page = operator_page
    TargetFactory(name="partner", url=receiver.url)
    TargetFactory(name="broken-partner", url="http://127.0.0.1:9/refuses", retry_schedule="0")
    receiver.control(script=[{"status": 400, "body": {"ok": False, "reason": "bad field"}}])
    for _ in range(3):
        milestone_emit(event=MilestoneEventFactory())
    for _ in range(2):
        deliveries_run(transport=default_transport())
    rejected = Delivery.objects.get(target="partner", status=Status.REJECTED)
    envelope = EnvelopeFactory()
    for _ in range(2):  # accepted, then a duplicate
        httpx.post(f"{server}/internal/milestones/ingest", content=signed(envelope)[0],
                   headers=signed(envelope)[1])
    httpx.post(f"{server}/internal/milestones/ingest", content=b"{}")  # rejected

    page.goto(f"{server}/admin/")
    _no_wider_than_the_page(page)
    assert page.locator("#cb-delivery-chart svg rect").count() > 0
    ingest_bars = page.locator("#cb-ingest-chart svg rect title").all_text_contents()
    assert {t.split(": ", 1)[1] for t in ingest_bars} == {"1 accepted", "1 duplicate",
                                                          "1 rejected"}
    docs_screenshot(page, "console-index.png")
    page.click("#cb-outbox-dead")  # click 1: the dead letters of the outbox
    page.click(f"a[href*='/delivery/{rejected.pk}/change/']")  # click 2: this one
    page.wait_for_selector("#cb-requeue")
    _no_wider_than_the_page(page)
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("#cb-internal[open]").count() == 0  # internal fields collapsed
    docs_screenshot(page, "console-delivery.png")

    page.click("#cb-requeue summary")
    page.fill("#cb-requeue-reason", "receiver fixed its validation")
    page.click("#cb-requeue input[type=submit]")
    page.wait_for_selector(".messagelist")
    assert page.locator("#content-main .cb-badge").first.inner_text() == "pending"
    done = [d for d in deliveries_run(transport=default_transport()) if d.pk == rejected.pk]
    assert done[0].status == Status.DELIVERED
    page.reload()
    assert page.locator("#content-main .cb-badge").first.inner_text() == "delivered"
    assert Delivery.objects.get(pk=rejected.pk).note.startswith("requeued by ops")


def test_target_list_shows_the_failing_target(server, operator_page, receiver):
    page = operator_page
    TargetFactory(name="partner", url=receiver.url)
    TargetFactory(name="broken-partner", url="http://127.0.0.1:9/refuses", retry_schedule="0")
    milestone_emit(event=MilestoneEventFactory())
    deliveries_run(transport=default_transport())
    page.goto(f"{server}/admin/orchestrator_app/target/")
    _no_wider_than_the_page(page)
    broken = page.locator("#result_list tr", has_text="broken-partner")
    assert broken.locator(".cb-alert").count() == 1  # failing since
    assert "0%" in broken.inner_text()
    assert "100%" in page.locator("#result_list").inner_text()  # the healthy one
    docs_screenshot(page, "console-targets.png")


def test_feed_dead_letter_page_shows_errors_and_the_body(server, operator_page):
    import httpx

    from tests.factories import EnvelopeFactory
    from tests.feed.factories import signed

    envelope = EnvelopeFactory()
    envelope["event"]["riskStatus"] = "sideways"
    body, headers = signed(envelope)
    httpx.post(f"{server}/internal/milestones/ingest", content=body, headers=headers)
    page = operator_page
    page.goto(f"{server}/admin/")
    page.click("#cb-feed-dead")
    page.click("#result_list tbody tr a")
    _no_wider_than_the_page(page)
    assert "riskStatus" in page.locator(".cb-field-errors").inner_text()
    assert "the outbox delivery with this key" in page.content()
    docs_screenshot(page, "console-feed-dead-letter.png")
