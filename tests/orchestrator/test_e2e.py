"""End to end over real HTTP: the outbox sends to a receiver process that verifies both
signature schemes with clawdbot.contract and deduplicates by idempotencyKey."""

from __future__ import annotations

import pytest

from orchestrator_app.models import Delivery, Status, Target
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.replay import milestone_replay
from orchestrator_app.services.triage import delivery_requeue
from orchestrator_app.transport import KeepAliveTransport
from tests.factories import MilestoneEventFactory
from tests.helpers import wait_for
from tests.orchestrator.factories import TargetFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def http():
    return KeepAliveTransport()


def _emit(receiver, name: str = "r", **target: object) -> Delivery:
    TargetFactory(name=name, url=receiver.url, **target)
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    return Delivery.objects.get(idempotency_key=key, target=name)


def _once(http) -> Delivery:
    delivery, = deliveries_run(transport=http)
    return delivery


def test_delivered_with_both_signatures_verified(receiver, http):
    _emit(receiver)
    assert _once(http).status == Status.DELIVERED
    entry, = receiver.log()
    assert entry["schemes"] == ["legacy", "webhook"] and entry["error"] == ""


def test_replay_of_a_delivered_milestone_is_duplicate(receiver, http):
    delivery = _emit(receiver)
    _once(http)
    target = Target.objects.get(name="r")
    milestone_replay(idempotency_key=delivery.idempotency_key, targets=[target], actor="ops",
                     reason="check")
    assert _once(http).status == Status.DUPLICATE
    assert {e["key"] for e in receiver.log()} == {delivery.idempotency_key}


def test_wrong_secret_is_rejected_by_the_receiver(receiver, http):
    _emit(receiver, legacy_secrets="not-the-secret", sign_webhook=False)
    delivery = _once(http)
    assert (delivery.status, delivery.last_status_code) == (Status.REJECTED, 401)


def test_retry_then_success(receiver, http):
    receiver.control(script=[{"status": 503}])
    _emit(receiver, retry_schedule="0,0")
    assert _once(http).status == Status.RETRYING
    delivery = _once(http)
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 2)


def test_retry_then_dead_letter(receiver, http):
    receiver.control(default={"status": 503})
    _emit(receiver, retry_schedule="0,0")
    statuses = [_once(http).status for _ in range(3)]
    assert statuses == [Status.RETRYING, Status.RETRYING, Status.DEAD_LETTER]
    assert deliveries_run(transport=http) == []


def test_requeued_dead_letter_is_delivered(receiver, http):
    receiver.control(default={"status": 503})
    delivery = _emit(receiver, retry_schedule="0")
    assert [_once(http).status for _ in range(2)] == [Status.RETRYING, Status.DEAD_LETTER]
    receiver.control(default={"status": 200})
    delivery_requeue(delivery_id=str(delivery.pk), actor="ops", reason="receiver back")
    assert _once(http).status == Status.DELIVERED


def test_fan_out_to_two_targets_with_the_same_key(receiver, receiver_b, http):
    TargetFactory(name="a", url=receiver.url)
    TargetFactory(name="b", url=receiver_b.url)
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    done = deliveries_run(transport=http)
    assert sorted((d.target, d.status) for d in done) == [("a", "delivered"), ("b", "delivered")]
    assert [e["key"] for e in receiver.log()] == [e["key"] for e in receiver_b.log()] == [key]


def test_429_retry_after_is_honoured(receiver, http):
    receiver.control(script=[{"status": 429, "retryAfter": "1"}])
    _emit(receiver, retry_schedule="3600")
    first = _once(http)
    assert first.status == Status.RETRYING
    assert 0.9 < (first.next_attempt_at - first.last_attempt_at).total_seconds() < 2
    assert deliveries_run(transport=http) == []  # not due yet
    delivered = wait_for(lambda: deliveries_run(transport=http), timeout=5, what="retry due")
    assert delivered[0].status == Status.DELIVERED


def test_410_pauses_the_target(receiver, http):
    receiver.control(script=[{"status": 410}])
    _emit(receiver)
    assert _once(http).status == Status.REJECTED
    assert Target.objects.get(name="r").paused_at is not None


def test_hanging_receiver_times_out_and_retries(receiver, http):
    receiver.control(script=[{"hang": True}])
    _emit(receiver, timeout_s=0.5, retry_schedule="0")
    delivery = _once(http)
    assert delivery.status == Status.RETRYING
    assert delivery.last_error.startswith("timeout")
    receiver.control(default={"status": 200})
    assert _once(http).status == Status.DELIVERED


def test_keep_alive_connection_dropped_by_the_receiver_is_reopened(receiver, http):
    receiver.control(script=[{"status": 200, "drop": True}])
    _emit(receiver)
    assert _once(http).status == Status.DELIVERED
    milestone_emit(event=MilestoneEventFactory())
    delivery = _once(http)
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 1)
