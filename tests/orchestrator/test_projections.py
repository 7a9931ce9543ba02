from __future__ import annotations

import pytest

from clawdbot.eventstore import projections
from orchestrator_app.models import Delivery, Status
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.triage import delivery_discard, delivery_requeue
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
