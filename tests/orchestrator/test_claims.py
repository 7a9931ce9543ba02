"""Claims: a lease per claim, an attempt-started trace, and attempts recorded one by one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clawdbot.eventstore import projections, store
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, DeliveryAttempt, Status
from orchestrator_app.services.delivery import (
    Sent,
    deliveries_claim,
    deliveries_record,
    deliveries_record_each,
    deliveries_run,
)
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.transport import TransportResponse
from tests.factories import MilestoneEventFactory
from tests.orchestrator.factories import TargetFactory

pytestmark = pytest.mark.django_db

OK = TransportResponse(200, b'{"ok":true,"status":"accepted"}')


def _one(**target: object) -> Delivery:
    TargetFactory(name="t", **target)
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    return Delivery.objects.get(idempotency_key=key)


def _expire(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_each_claim_owns_its_lease_even_within_one_process():
    delivery = _one()
    first, = deliveries_claim(limit=1)
    _expire(delivery)
    second, = deliveries_claim(limit=1)  # same process, the lease taken over
    assert first.owner != second.owner and first.worker == second.worker
    # The first attempt ends late: it is recorded, but the second claim keeps its lease.
    deliveries_record(sent=[Sent(first, OK, timezone.now())])
    assert Delivery.objects.get(pk=delivery.pk).lease_owner == second.owner


def test_a_claim_records_that_the_attempt_started_before_any_request():
    delivery = _one()
    claim, = deliveries_claim(limit=1)
    started = store.read_stream(ev.milestone_stream(delivery.idempotency_key))[-1]
    assert started.type == ev.DELIVERY_ATTEMPT_STARTED
    assert started.data["claim"] == claim.owner and started.data["worker"] == claim.worker
    row = DeliveryAttempt.objects.get(delivery=delivery)
    assert (row.outcome, row.number, row.worker) == ("started", 1, claim.worker)


def test_an_outcome_replaces_its_started_row():
    delivery = _one()
    deliveries_run(transport=_Fixed(OK))
    rows = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("outcome",
                                                                              "number"))
    assert rows == [("delivered", 1)]


def test_an_attempt_whose_worker_vanished_shows_as_interrupted_and_rebuilds_the_same():
    delivery = _one()
    deliveries_claim(limit=1)  # this "worker" never reports
    _expire(delivery)
    deliveries_run(transport=_Fixed(OK))
    rows = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("outcome",
                                                                              flat=True))
    assert rows == ["interrupted", "delivered"]
    live = projections.table_snapshot(projections.get("outbox"))
    projections.rebuild("outbox")
    assert projections.table_snapshot(projections.get("outbox")) == live


def test_a_late_outcome_of_an_interrupted_attempt_takes_its_place():
    delivery = _one()
    first, = deliveries_claim(limit=1)
    _expire(delivery)
    second, = deliveries_claim(limit=1)
    deliveries_record(sent=[Sent(first, TransportResponse(503), timezone.now())])
    rows = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("outcome",
                                                                              flat=True))
    assert rows == ["started", "retrying"]  # the second claim is still under way


def test_an_attempt_that_cannot_be_recorded_does_not_cost_the_others_theirs():
    TargetFactory(name="a")
    TargetFactory(name="b")
    milestone_emit(event=MilestoneEventFactory())
    claims = deliveries_claim(limit=10)
    by_target = {Delivery.objects.get(pk=c.delivery_id).target: c for c in claims}
    # NaN is not JSON: this attempt's event cannot be stored as it is.
    poisoned = TransportResponse(200, b"{}", duration_ms=float("nan"))
    sent = [Sent(by_target["a"], poisoned, timezone.now()),
            Sent(by_target["b"], OK, timezone.now())]
    deliveries_record_each(sent=sent)
    status = dict(Delivery.objects.values_list("target", "status"))
    assert status["b"] == Status.DELIVERED
    # The poisoned one is recorded bare (as a failed attempt) rather than not at all.
    assert status["a"] == Status.RETRYING
    assert Delivery.objects.get(target="a").last_error.startswith("answer could not be recorded")
    assert set(Delivery.objects.values_list("lease_owner", flat=True)) == {""}


def test_a_claim_takes_at_most_its_share_of_one_target():
    TargetFactory(name="busy")
    TargetFactory(name="quiet")
    for _ in range(6):
        milestone_emit(event=MilestoneEventFactory())
    claims = deliveries_claim(limit=10, per_target=4, busy={"busy": 3})
    targets = sorted(Delivery.objects.get(pk=c.delivery_id).target for c in claims)
    assert targets == ["busy"] + ["quiet"] * 4


class _Fixed:
    def __init__(self, response: TransportResponse) -> None:
        self.response = response

    def post(self, url: str, **kwargs: object) -> TransportResponse:
        return self.response
