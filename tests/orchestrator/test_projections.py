from __future__ import annotations

import pytest

from clawdbot.eventstore import projections
from orchestrator_app.models import Delivery, Status, Target, TargetPause
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


def test_rebuild_reproduces_milestones_deliveries_and_attempts(transport):
    TargetFactory(name="a", retry_schedule="0")
    TargetFactory(name="b", retry_schedule="0")
    for _ in range(3):
        milestone_emit(event=MilestoneEventFactory())
    transport.script.extend([
        TransportResponse(200, b"{}"), TransportResponse(503), TransportResponse(400),
        TransportResponse(200, b'{"status":"duplicate"}'),
    ])
    transport.default = TransportResponse(503)
    while deliveries_run(transport=transport):
        pass
    dead = Delivery.objects.filter(status__in=[Status.DEAD_LETTER, Status.REJECTED])
    delivery_requeue(delivery_id=str(dead[0].pk), actor="ops", reason="fixed")
    delivery_discard(delivery_id=str(dead[1].pk), actor="ops", reason="obsolete")
    projection = projections.get("outbox")
    live = projections.table_snapshot(projection)
    assert len(live["orchestrator_delivery_attempt"]) > 6

    Delivery.objects.update(status=Status.DELIVERED, attempts=99)
    projections.rebuild("outbox")

    assert projections.table_snapshot(projection) == live


def test_rebuild_restores_which_targets_are_paused(transport):
    TargetFactory(name="held")
    TargetFactory(name="back")
    TargetFactory(name="open")
    target_pause(name="back", actor="ops", reason="maintenance")
    target_resume(name="back", actor="ops", reason="done")
    target_pause(name="held", actor="ops", reason="first")
    target_pause(name="held", actor="ops", reason="receiver moving")
    projection = projections.get("outbox_target_pause")
    live = projections.table_snapshot(projection)

    TargetPause.objects.all().delete()
    assert Target.objects.get(name="held").paused_at is None
    projections.rebuild("outbox_target_pause")

    assert projections.table_snapshot(projection) == live
    held = Target.objects.get(name="held")
    assert held.paused_at is not None and held.paused_reason == "receiver moving"
    assert Target.objects.get(name="back").paused_at is None
    milestone_emit(event=MilestoneEventFactory())
    deliveries_run(transport=transport)
    assert sorted(Delivery.objects.values_list("target", "status")) == [
        ("back", Status.DELIVERED), ("held", Status.PENDING), ("open", Status.DELIVERED)]
