"""The outbox screens of the admin over HTTP: read-only delivery page with triage buttons,
masked secrets, and every mutation refused to a view-only user."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from clawdbot.eventstore import store
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, Status, Target
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import LEGACY_SECRET, WEBHOOK_SECRET, TargetFactory

pytestmark = pytest.mark.django_db

DELIVERIES = "/admin/orchestrator_app/delivery/"
TARGETS = "/admin/orchestrator_app/target/"


@pytest.fixture
def dead(transport) -> Delivery:
    TargetFactory(name="t")
    milestone_emit(event=MilestoneEventFactory())
    transport.default = TransportResponse(
        400, b'{"ok":false,"reason":"bad"}', headers={"content-type": "application/json",
                                                     "x-request-id": "r-1"})
    delivery, = deliveries_run(transport=transport)
    assert delivery.status == Status.REJECTED
    return delivery


@pytest.fixture
def viewer(client):
    """A staff user who may view every outbox model and change none."""
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="orchestrator_app", codename__startswith="view_"))
    client.force_login(user)
    return client


def _types(delivery: Delivery) -> list[str]:
    return [e.type for e in store.read_stream(ev.milestone_stream(delivery.idempotency_key))]


def test_view_only_user_is_refused_every_delivery_mutation(viewer, dead):
    before = _types(dead)
    for action in ("requeue", "discard"):
        viewer.post(DELIVERIES, {"action": action, "_selected_action": [str(dead.pk)],
                                 "apply": "1", "reason": "not allowed"})
        response = viewer.post(f"{DELIVERIES}{dead.pk}/{action}/", {"apply": "1",
                                                                    "reason": "not allowed"})
        assert response.status_code == 403
        assert viewer.get(f"{DELIVERIES}{dead.pk}/{action}/").status_code == 403
    assert viewer.post(f"{DELIVERIES}{dead.pk}/change/", {"status": "pending"}).status_code == 403
    dead.refresh_from_db()
    assert dead.status == Status.REJECTED and _types(dead) == before


def test_view_only_user_sees_no_triage_on_the_delivery_page_or_list(viewer, dead):
    page = viewer.get(f"{DELIVERIES}{dead.pk}/change/").content.decode()
    assert "Requeue…" not in page and "Discard…" not in page
    listing = viewer.get(DELIVERIES).content.decode()
    assert 'value="requeue"' not in listing and 'value="discard"' not in listing


def test_view_only_user_cannot_pause_resume_or_read_secrets(viewer, dead):
    target = Target.objects.get(name="t")
    for action in ("pause", "resume"):
        viewer.post(TARGETS, {"action": action, "_selected_action": [str(target.pk)],
                              "apply": "1", "reason": "not allowed"})
    assert store.read_stream(ev.target_stream("t")) == []
    page = viewer.get(f"{TARGETS}{target.pk}/change/").content.decode()
    assert LEGACY_SECRET not in page and WEBHOOK_SECRET not in page
    assert f"…{LEGACY_SECRET[-4:]}" in page
    assert viewer.post(f"{TARGETS}{target.pk}/change/", {"url": "http://x"}).status_code == 403


def test_target_page_never_shows_a_secret_and_blank_keeps_it(admin_client, dead):
    target = Target.objects.get(name="t")
    page = admin_client.get(f"{TARGETS}{target.pk}/change/").content.decode()
    assert LEGACY_SECRET not in page and WEBHOOK_SECRET not in page
    assert f"…{WEBHOOK_SECRET[-4:]}" in page
    form = {"url": "http://127.0.0.1:9/new", "sign_legacy": "on", "sign_webhook": "on",
            "legacy_secrets": "", "webhook_secrets": "", "is_active": "on", "timeout_s": "2",
            "retry_schedule": "0,0"}
    assert admin_client.post(f"{TARGETS}{target.pk}/change/", form).status_code == 302
    target.refresh_from_db()
    assert (target.url, target.legacy_secrets, target.webhook_secrets) == (
        "http://127.0.0.1:9/new", LEGACY_SECRET, WEBHOOK_SECRET)


def test_delivery_page_is_read_only_with_exact_times_attempts_and_request(admin_client, dead):
    page = admin_client.get(f"{DELIVERIES}{dead.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert "Requeue…" in page and "Discard…" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", page)  # to the millisecond
    assert "HTTP 400" in page and "x-request-id" in page  # the attempt and its answer
    assert "webhook-signature" in page and "[redacted]" in page  # the headers sent
    assert LEGACY_SECRET not in page and WEBHOOK_SECRET not in page
    assert f"?stream_id=outbox-{dead.idempotency_key}" in page
    assert f"deadletter/?idempotency_key={dead.idempotency_key}" in page
    assert 'id="cb-internal"' in page  # lease and position, collapsed


def test_requeue_from_the_delivery_page_records_the_reason(admin_client, dead, transport):
    asked = admin_client.get(f"{DELIVERIES}{dead.pk}/requeue/")
    assert asked.status_code == 200 and b'name="reason"' in asked.content
    done = admin_client.post(f"{DELIVERIES}{dead.pk}/requeue/",
                             {"apply": "1", "reason": "receiver fixed"})
    assert done.status_code == 302 and done["Location"].endswith(f"{dead.pk}/change/")
    event = store.read_stream(ev.milestone_stream(dead.idempotency_key))[-1]
    assert (event.type, event.data["actor"], event.data["reason"]) == (
        ev.DELIVERY_REQUEUED, "admin", "receiver fixed")
    transport.default = TransportResponse(200, b'{"ok":true,"status":"accepted"}')
    assert deliveries_run(transport=transport)[0].status == Status.DELIVERED
    page = admin_client.get(f"{DELIVERIES}{dead.pk}/change/").content.decode()
    assert "Requeue…" not in page  # a delivered delivery has nothing to triage


def test_requeue_without_a_reason_asks_again(admin_client, dead):
    again = admin_client.post(f"{DELIVERIES}{dead.pk}/requeue/", {"apply": "1", "reason": ""})
    assert again.status_code == 200 and b"This field is required" in again.content
    dead.refresh_from_db()
    assert dead.status == Status.REJECTED
