"""The console over HTTP: the overview on the admin index, target health, the console
log lines, the favicon and static files without warnings."""

from __future__ import annotations

import logging
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from clawdbot.serve import web_command
from orchestrator_app.models import Delivery, Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.triage import delivery_requeue, target_pause
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.conftest import FakeTransport
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _outbox(settings):
    settings.MILESTONE_INGEST_URL = ""
    settings.MILESTONE_RETRY_SCHEDULE = "0"


@pytest.fixture
def failing_and_healthy():
    """Target "broken" answers 503 (dead-lettered after its one retry), "fine" 200."""
    TargetFactory(name="broken", retry_schedule="0")
    TargetFactory(name="fine")
    milestone_emit(event=MilestoneEventFactory())
    answers = {"broken": TransportResponse(503, b"down"),
               "fine": TransportResponse(200, b'{"ok":true,"status":"accepted"}')}

    class ByTarget(FakeTransport):
        def post(self, url, **kwargs):
            return answers["broken" if "9/broken" in url else "fine"]

    from orchestrator_app.models import Target
    Target.objects.filter(name="broken").update(url="http://127.0.0.1:9/broken")
    transport = ByTarget()
    deliveries_run(transport=transport)
    deliveries_run(transport=transport)
    return {d.target: d for d in Delivery.objects.all()}


def test_index_is_branded_and_shows_the_outbox_first(admin_client, failing_and_healthy):
    page = admin_client.get("/admin/").content.decode()
    assert "ClawDBot operations" in page
    assert page.index("cb-overview") < page.index("app-orchestrator_app")
    assert page.index("Orchestrator outbox") < page.index("Milestone feed")


def test_index_counts_dead_letters_by_status_and_target_with_links(
        admin_client, failing_and_healthy):
    assert failing_and_healthy["broken"].status == Status.DEAD_LETTER
    page = admin_client.get("/admin/").content.decode()
    overview = page[page.index('id="cb-overview"'):]
    assert 'href="/admin/orchestrator_app/delivery/?undeliverable=yes"' in overview
    dead = overview[overview.index('id="cb-dead-letters"'):overview.index('id="cb-backlog"')]
    assert '<span class="cb-big cb-alert">1</span>' in dead
    assert "?status=dead-letter" in overview and "?target=broken" in overview
    assert overview.count("<rect") >= 2  # delivered and failed bars in the hour's chart
    assert "ms" in overview[overview.index('id="cb-latency"'):]


def test_target_list_shows_a_failing_target_apart_from_a_healthy_one(
        admin_client, failing_and_healthy):
    target_pause(name="broken", actor="ops", reason="receiver migrating")
    page = admin_client.get("/admin/orchestrator_app/target/").content.decode()
    broken = page[page.index(">broken<"):page.index(">fine<")]
    fine = page[page.index(">fine<"):]
    assert "dead-letter" in broken and "0%" in broken and "cb-alert" in broken
    assert "paused" in broken and "receiver migrating" in broken
    assert "delivered" in fine and "100%" in fine and "cb-alert" not in fine


def test_send_test_milestone_goes_to_the_selected_target_only(admin_client,
                                                             failing_and_healthy):
    from orchestrator_app.models import Target
    fine = Target.objects.get(name="fine")
    before = Delivery.objects.count()
    admin_client.post("/admin/orchestrator_app/target/",
                      {"action": "send_test", "_selected_action": [str(fine.pk)]})
    new = Delivery.objects.order_by("-created_at").first()
    assert Delivery.objects.count() == before + 1
    assert (new.target, new.milestone_id, new.status) == ("fine", "console.test-delivery",
                                                          Status.PENDING)


def test_rotate_secrets_action_asks_for_the_new_secret_and_keeps_the_old_after_it(
        admin_client):
    from clawdbot.contract import generate_legacy_secret
    from orchestrator_app.models import Target

    old, new = generate_legacy_secret(), generate_legacy_secret()
    target = TargetFactory(name="rotated", legacy_secrets=old)
    chosen = {"action": "rotate_secrets", "_selected_action": [str(target.pk)]}
    asked = admin_client.post("/admin/orchestrator_app/target/", chosen)
    assert b"New legacy signing secret" in asked.content
    refused = admin_client.post("/admin/orchestrator_app/target/", {**chosen, "apply": "1"})
    assert b"Give a new signing secret" in refused.content
    done = admin_client.post("/admin/orchestrator_app/target/",
                             {**chosen, "apply": "1", "signing_secret": new}, follow=True)
    assert b"Rotate secrets: 1 done" in done.content
    assert Target.objects.get(name="rotated").legacy_secret_list() == [new, old]
    assert new.encode() not in done.content and old.encode() not in done.content


def test_console_logs_a_line_per_rejection_dead_letter_pause_and_requeue(caplog):
    TargetFactory(name="t", retry_schedule="0")
    milestone_emit(event=MilestoneEventFactory())
    caplog.set_level(logging.INFO)
    delivery, = deliveries_run(transport=FakeTransport(
        default=TransportResponse(422, b'{"reason":"no"}')))
    key = delivery.idempotency_key
    delivery_requeue(delivery_id=str(delivery.pk), actor="ops", reason="fixed it")
    deliveries_run(transport=FakeTransport(default=TransportResponse(503, b"")))
    deliveries_run(transport=FakeTransport(default=TransportResponse(503, b"")))
    target_pause(name="t", actor="ops", reason="maintenance")
    lines = [r.getMessage() for r in caplog.records]
    for expected in (f"to t key={key} rejected: HTTP 422", f"to t key={key} requeued by ops: "
                     "fixed it", f"to t key={key} dead-lettered: gave up",
                     "target t paused by ops: maintenance"):
        assert sum(expected in line for line in lines) == 1, (expected, lines)


def test_ingest_rejection_logs_one_line(client, caplog):
    caplog.set_level(logging.WARNING)
    client.post("/internal/milestones/ingest", b"{}", content_type="application/json")
    assert [r.getMessage() for r in caplog.records if "ingest rejected" in r.getMessage()]


def test_access_log_is_a_setting(monkeypatch):
    assert "--no-access-log" in web_command("127.0.0.1", 1, "uvicorn")
    monkeypatch.setenv("CLAWDBOT_ACCESS_LOG", "1")
    assert "--access-log" in web_command("127.0.0.1", 1, "uvicorn")


def test_favicon_and_api_docs_assets_answer_without_a_warning():
    """Through Django's ASGI handler, as uvicorn serves them."""
    get = async_to_sync(AsyncClient().get)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        icon = get("/favicon.ico")
        docs = get("/api/docs/")
        asset = get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert docs.status_code == 200 and asset.status_code == 200
    assert [str(w.message) for w in caught if "StreamingHttpResponse" in str(w.message)] == []
    assert get("/static/../clawdbot/settings.py").status_code in (400, 404)
