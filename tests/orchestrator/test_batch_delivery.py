"""Batched delivery over real HTTP: due backlogs to a target with ``supports_batch`` go as
signed ``POST <url>/batch`` requests, and each item's result sets its own delivery."""

from __future__ import annotations

import threading

import pytest
from django.utils import timezone

from clawdbot.eventstore import store
from feed_app.models import FeedItem
from orchestrator_app import dispatcher
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, DeliveryAttempt, Status
from orchestrator_app.selectors import targets_active
from orchestrator_app.services import batch
from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.services.replay import milestone_replay
from orchestrator_app.transport import KeepAliveTransport
from tests.factories import MilestoneEventFactory
from tests.helpers import wait_for
from tests.liveserver import asgi_server
from tests.orchestrator.factories import TargetFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_refusals():
    batch.batch_refusals_forget()
    yield
    batch.batch_refusals_forget()


@pytest.fixture
def http():
    return KeepAliveTransport()


def _emit(n: int) -> list[str]:
    return [milestone_emit(event=MilestoneEventFactory()).idempotency_key for _ in range(n)]


def _statuses(keys: list[str]) -> list[str]:
    by_key = dict(Delivery.objects.filter(idempotency_key__in=keys)
                  .values_list("idempotency_key", "status"))
    return [by_key[k] for k in keys]


def _attempted(key: str) -> list[dict]:
    return [e.data for e in store.read_stream(ev.milestone_stream(key))
            if e.type == ev.DELIVERY_ATTEMPTED]


def test_a_backlog_goes_as_one_signed_batch_and_each_delivery_is_delivered(receiver, http):
    TargetFactory(name="r", url=receiver.url, supports_batch=True)
    keys = _emit(30)
    done = deliveries_run(transport=http)
    assert sorted(d.idempotency_key for d in done) == sorted(keys)
    entry, = receiver.log()
    assert entry["path"] == "/internal/milestones/ingest/batch"
    assert entry["schemes"] == ["legacy", "webhook"] and entry["error"] == ""
    assert entry["webhookId"] == entry["key"] and entry["key"].startswith("batch-")
    assert sorted(entry["keys"]) == sorted(keys)
    assert _statuses(keys) == [Status.DELIVERED] * 30
    # Each delivery's history holds its own attempt, as a single send records it.
    for key in keys:
        attempt, = _attempted(key)
        assert (attempt["outcome"], attempt["statusCode"], attempt["batchId"]) == (
            "delivered", 200, entry["key"])
    assert DeliveryAttempt.objects.filter(outcome="delivered").count() == 30
    assert not DeliveryAttempt.objects.filter(outcome="started").exists()


def test_each_item_result_sets_its_own_delivery(receiver, http):
    target = TargetFactory(name="r", url=receiver.url, supports_batch=True)
    seen = _emit(1)
    deliveries_run(transport=http)  # alone: one due delivery is not a backlog
    assert receiver.log()[0]["path"] == "/internal/milestones/ingest"
    keys = _emit(6)
    refused = keys[2]
    receiver.control(default={"status": 200, "reject": [refused]})
    # The receiver already has ``seen``: replayed, its key answers duplicate.
    milestone_replay(idempotency_key=seen[0], targets=[target], actor="ops", reason="check")
    deliveries_run(transport=http)
    assert receiver.log()[-1]["path"].endswith("/batch")
    assert _statuses(seen + keys) == [Status.DUPLICATE, Status.DELIVERED, Status.DELIVERED,
                                      Status.REJECTED, Status.DELIVERED, Status.DELIVERED,
                                      Status.DELIVERED]
    rejected = Delivery.objects.get(idempotency_key=refused)
    assert "rejected in the batch: invalid_event" in rejected.last_error
    assert rejected.last_status_code == 200


def test_a_failed_batch_leaves_each_delivery_retrying_on_its_schedule(receiver, http):
    TargetFactory(name="r", url=receiver.url, supports_batch=True, retry_schedule="0,0")
    keys = _emit(5)
    receiver.control(script=[{"status": 503, "retryAfter": "1"}])
    deliveries_run(transport=http)
    rows = list(Delivery.objects.filter(idempotency_key__in=keys))
    assert {(d.status, d.attempts, d.last_status_code) for d in rows} == {
        (Status.RETRYING, 1, 503)}
    # Each delivery's retry falls due on its own clock, microseconds apart: once all five
    # are due, one run retries them as one batch.
    wait_for(lambda: Delivery.objects.filter(idempotency_key__in=keys,
                                             next_attempt_at__lte=timezone.now()).count() == 5,
             timeout=10, what="the five retries due")
    deliveries_run(transport=http)
    assert _statuses(keys) == [Status.DELIVERED] * 5
    assert [len(e["keys"]) for e in receiver.log()] == [5, 5]


def test_a_timed_out_batch_retries_each_delivery(receiver, http):
    TargetFactory(name="r", url=receiver.url, supports_batch=True, timeout_s=0.5)
    keys = _emit(3)
    receiver.control(script=[{"hang": True}])
    deliveries_run(transport=http)
    assert {(d.status, d.last_error[:7]) for d in Delivery.objects.all()} == {
        (Status.RETRYING, "timeout")}
    receiver.control(default={"status": 200})
    deliveries_run(transport=http)
    assert _statuses(keys) == [Status.DELIVERED] * 3


def test_a_target_that_refuses_batches_gets_single_envelopes_and_the_reason(receiver, http):
    TargetFactory(name="r", url=receiver.url, supports_batch=True)
    keys = _emit(4)
    receiver.control(script=[{"status": 404}])
    deliveries_run(transport=http)
    log = receiver.log()
    assert [e["path"].endswith("/batch") for e in log] == [True] + [False] * 4
    assert sorted(e["key"] for e in log[1:]) == sorted(keys)
    assert _statuses(keys) == [Status.DELIVERED] * 4
    for key in keys:
        attempt, = _attempted(key)  # the refused batch is not an attempt of each
        assert attempt["sentAloneBecause"] == "POST 127.0.0.1 …/batch answered HTTP 404"
    refusal, = [e for e in store.read_stream(ev.target_stream("r"))
                if e.type == ev.TARGET_BATCH_REFUSED]
    assert "HTTP 404" in refusal.data["reason"]
    # For a while this process sends that target single envelopes without asking again.
    more = _emit(3)
    deliveries_run(transport=http)
    assert [e["path"].endswith("/batch") for e in receiver.log()[5:]] == [False] * 3
    assert _statuses(more) == [Status.DELIVERED] * 3


def test_a_wrongly_signed_batch_is_rejected_for_each_delivery(receiver, http):
    TargetFactory(name="r", url=receiver.url, supports_batch=True,
                  legacy_secrets="not-the-secret", sign_webhook=False)
    keys = _emit(3)
    deliveries_run(transport=http)
    entry, = receiver.log()
    assert entry["error"] == "legacy signature mismatch"
    assert {(d.status, d.last_status_code) for d in Delivery.objects.all()} == {
        (Status.REJECTED, 401)}
    assert len(keys) == 3


def test_an_answer_that_does_not_name_every_item_retries_them(receiver, http):
    TargetFactory(name="r", url=receiver.url, supports_batch=True)
    _emit(3)
    receiver.control(script=[{"status": 200, "body": {"ok": True, "results": []}}])
    deliveries_run(transport=http)
    assert {(d.status, d.last_error) for d in Delivery.objects.all()} == {
        (Status.RETRYING, "HTTP 200, batch answer not understood: expected 3 results in order")}


def test_targets_without_batch_support_get_single_requests(receiver, http):
    TargetFactory(name="r", url=receiver.url)
    _emit(4)
    deliveries_run(transport=http)
    assert [e["path"] for e in receiver.log()] == ["/internal/milestones/ingest"] * 4


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_drains_a_backlog_in_batches(receiver, receiver_b):
    TargetFactory(name="batched", url=receiver.url, supports_batch=True)
    TargetFactory(name="single", url=receiver_b.url)
    keys = _emit(60)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.dispatch_forever, daemon=True,
                              kwargs={"stop": stop})
    thread.start()
    try:
        wait_for(lambda: Delivery.objects.filter(status=Status.DELIVERED).count() == 120,
                 timeout=60, what="both targets' deliveries delivered")
    finally:
        stop.set()
        thread.join(timeout=10)
    batched = [k for e in receiver.log() for k in e.get("keys", [e["key"]])]
    assert sorted(batched) == sorted(keys), "every key to the batch target, once"
    assert len(receiver.log()) < 60, "the backlog went in batches"
    assert sorted(e["key"] for e in receiver_b.log()) == sorted(keys)


@pytest.mark.django_db(transaction=True)
def test_batches_into_the_real_feed_ingest_then_a_replay_is_duplicate(http):
    with asgi_server() as server:
        TargetFactory(name="feed", url=f"{server}/internal/milestones/ingest",
                      legacy_secrets="", webhook_secrets="", supports_batch=True)
        keys = _emit(25)
        deliveries_run(transport=http)
        assert _statuses(keys) == [Status.DELIVERED] * 25
        assert sorted(FeedItem.objects.values_list("idempotency_key", flat=True)) == \
            sorted(keys)
        for key in keys:
            milestone_replay(idempotency_key=key, targets=targets_active(), actor="ops",
                             reason="replay")
        deliveries_run(transport=http)
    assert _statuses(keys) == [Status.DUPLICATE] * 25
    assert all(a["batchId"] for k in keys for a in _attempted(k))
    assert FeedItem.objects.count() == 25
