from __future__ import annotations

import pytest

from clawdbot.eventstore import store
from orchestrator_app import events as ev
from orchestrator_app.exceptions import DeliveryNotTriageable
from orchestrator_app.models import Delivery, Status, Target
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.triage import (
    delivery_discard,
    delivery_requeue,
    target_pause,
    target_resume,
)
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead(transport) -> Delivery:
    TargetFactory(name="t")
    milestone_emit(event=MilestoneEventFactory())
    transport.default = TransportResponse(400, b'{"reason":"bad"}')
    delivery, = deliveries_run(transport=transport)
    return delivery


def _last_event(delivery: Delivery):
    return store.read_stream(ev.milestone_stream(delivery.idempotency_key))[-1]


def test_requeue_records_who_and_why_and_makes_it_due(dead, transport):
    delivery = delivery_requeue(delivery_id=str(dead.pk), actor="alice", reason="receiver fixed")
    assert (delivery.status, delivery.cycle_attempts) == (Status.PENDING, 0)
    event = _last_event(delivery)
    assert event.type == ev.DELIVERY_REQUEUED
    assert (event.data["actor"], event.data["reason"]) == ("alice", "receiver fixed")
    transport.default = TransportResponse(200, b"{}")
    assert deliveries_run(transport=transport)[0].status == Status.DELIVERED


def test_requeue_refuses_a_delivered_delivery(dead, transport):
    delivery_requeue(delivery_id=str(dead.pk), actor="alice", reason="retry")
    transport.default = TransportResponse(200, b"{}")
    deliveries_run(transport=transport)
    with pytest.raises(DeliveryNotTriageable):
        delivery_requeue(delivery_id=str(dead.pk), actor="alice", reason="again")


def test_discard_needs_a_reason_and_records_it(dead):
    with pytest.raises(DeliveryNotTriageable):
        delivery_discard(delivery_id=str(dead.pk), actor="bob", reason="  ")
    delivery = delivery_discard(delivery_id=str(dead.pk), actor="bob", reason="test data")
    assert delivery.status == Status.DISCARDED
    assert _last_event(delivery).data == {"deliveryId": str(dead.pk), "actor": "bob",
                                          "reason": "test data"}


def test_pause_holds_and_resume_releases_deliveries(transport):
    TargetFactory(name="t")
    target_pause(name="t", actor="ops", reason="maintenance")
    milestone_emit(event=MilestoneEventFactory())
    assert deliveries_run(transport=transport) == []
    target_resume(name="t", actor="ops", reason="back")
    assert Target.objects.get(name="t").paused_at is None
    assert deliveries_run(transport=transport)[0].status == Status.DELIVERED
    types = [e.type for e in store.read_stream(ev.target_stream("t"))]
    assert types == [ev.TARGET_PAUSED, ev.TARGET_RESUMED]


def test_admin_lists_dead_letters_with_every_attempt(admin_client, dead):
    listing = admin_client.get("/admin/orchestrator_app/delivery/?undeliverable=yes")
    assert dead.milestone_id in listing.content.decode()
    page = admin_client.get(f"/admin/orchestrator_app/delivery/{dead.pk}/change/")
    assert page.status_code == 200
    assert "HTTP 400" in page.content.decode()


def test_admin_requeue_asks_for_a_reason_then_records_it(admin_client, dead):
    url = "/admin/orchestrator_app/delivery/"
    form = {"action": "requeue", "_selected_action": [str(dead.pk)]}
    asked = admin_client.post(url, form)
    assert asked.status_code == 200 and b"reason" in asked.content
    admin_client.post(url, {**form, "apply": "1", "reason": "receiver redeployed"})
    event = _last_event(dead)
    assert (event.type, event.data["actor"], event.data["reason"]) == (
        ev.DELIVERY_REQUEUED, "admin", "receiver redeployed")


def test_admin_discard_records_the_reason(admin_client, dead):
    admin_client.post("/admin/orchestrator_app/delivery/", {
        "action": "discard", "_selected_action": [str(dead.pk)], "apply": "1",
        "reason": "duplicate of another milestone"})
    assert Delivery.objects.get(pk=dead.pk).status == Status.DISCARDED


def test_admin_pause_action_records_the_reason(admin_client):
    TargetFactory(name="t")
    admin_client.post("/admin/orchestrator_app/target/", {
        "action": "pause", "_selected_action": [str(Target.objects.get(name="t").pk)],
        "apply": "1", "reason": "receiver maintenance"})
    assert Target.objects.get(name="t").paused_reason == "receiver maintenance"
    event, = store.read_stream(ev.target_stream("t"))
    assert (event.data["actor"], event.data["reason"]) == ("admin", "receiver maintenance")


def test_admin_shows_targets_and_emitted_milestones(admin_client, dead):
    assert admin_client.get("/admin/orchestrator_app/target/").status_code == 200
    page = admin_client.get(f"/admin/orchestrator_app/emittedmilestone/{dead.idempotency_key}/"
                            "change/")
    assert page.status_code == 200 and dead.milestone_id in page.content.decode()


def test_admin_refuses_a_target_with_an_unreadable_schedule_or_no_timeout(admin_client):
    page = admin_client.post("/admin/orchestrator_app/target/add/", {
        "name": "t", "url": "http://127.0.0.1:9/ingest", "sign_legacy": "on",
        "is_active": "on", "timeout_s": "0", "retry_schedule": "5,nan"})
    assert page.status_code == 200  # the form again, with errors
    errors = page.context["adminform"].form.errors
    assert set(errors) == {"timeout_s", "retry_schedule"}
    assert "invalid retry schedule" in errors["retry_schedule"][0]
    assert not Target.objects.exists()


def test_admin_cannot_rename_or_delete_a_target_its_deliveries_name(admin_client, dead):
    target = Target.objects.get(name="t")
    change = admin_client.get(f"/admin/orchestrator_app/target/{target.pk}/change/")
    assert "name" in change.context["adminform"].readonly_fields
    delete = admin_client.get(f"/admin/orchestrator_app/target/{target.pk}/delete/")
    assert delete.status_code == 403
    assert admin_client.get("/admin/orchestrator_app/target/add/").status_code == 200
