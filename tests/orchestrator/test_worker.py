"""The real worker: ``manage.py qcluster`` processes against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from orchestrator_app import tasks
from orchestrator_app.models import Delivery, Status
from orchestrator_app.services.emit import milestone_emit
from tests.factories import MilestoneEventFactory
from tests.helpers import wait_for
from tests.orchestrator.factories import TargetFactory

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def _qcluster(**env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CLAWDBOT_DB_NAME": connection.settings_dict["NAME"], "Q_WORKERS": "1",
           "MILESTONE_LEASE_MARGIN_S": "1", "MILESTONE_INGEST_URL": "", "LOG_LEVEL": "WARNING",
           **env}
    return subprocess.Popen([sys.executable, str(MANAGE), "qcluster"], env=env,
                            start_new_session=True)


@pytest.fixture
def worker(transactional_db):
    """A qcluster with one worker process (its dispatcher thread included)."""
    proc = _qcluster()
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def worker_without_dispatcher(transactional_db):
    proc = _qcluster(MILESTONE_DISPATCHER="0")
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _delivery(key: str) -> Delivery:
    return Delivery.objects.get(idempotency_key=key)


@pytest.mark.slow
def test_worker_delivers_a_new_milestone_at_once(worker, receiver):
    TargetFactory(name="r", url=receiver.url)
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    wait_for(lambda: _delivery(key).status == Status.DELIVERED, timeout=20, what="delivered")
    assert [e["key"] for e in receiver.log()] == [key]


@pytest.mark.slow
def test_worker_killed_mid_attempt_leaves_a_trace_and_is_followed_by_a_new_attempt(
        worker, receiver):
    from orchestrator_app.models import DeliveryAttempt

    receiver.control(script=[{"hang": True}])
    TargetFactory(name="r", url=receiver.url, timeout_s=3)
    key = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    wait_for(lambda: receiver.log(), timeout=20, what="first attempt reaching the receiver")
    started = DeliveryAttempt.objects.get(delivery__idempotency_key=key)
    lease = _delivery(key).lease_owner
    assert started.outcome == "started" and lease
    os.kill(int(started.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    receiver.control(default={"status": 200})

    wait_for(lambda: _delivery(key).status == Status.DELIVERED, timeout=30, what="new attempt")
    assert [e["key"] for e in receiver.log()] == [key, key]
    history = list(DeliveryAttempt.objects.filter(delivery__idempotency_key=key)
                   .values_list("outcome", "worker"))
    assert history[0] == ("interrupted", started.worker)  # the killed attempt stays visible
    assert history[1][0] == "delivered"
    assert _delivery(key).lease_owner == ""


@pytest.mark.slow
def test_sweep_task_run_by_the_worker_delivers_what_stalled(worker_without_dispatcher, receiver):
    from django_q.tasks import async_task

    TargetFactory(name="r", url=receiver.url)
    stalled = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    overdue = timezone.now() - timedelta(seconds=tasks.SWEEP_MARGIN_S + 5)
    Delivery.objects.filter(idempotency_key=stalled).update(next_attempt_at=overdue)
    async_task(tasks.SWEEP_FUNC)
    wait_for(lambda: _delivery(stalled).status == Status.DELIVERED, timeout=20, what="swept")


@pytest.mark.django_db
def test_sweep_attempts_only_deliveries_overdue_past_the_margin(receiver):
    TargetFactory(name="r", url=receiver.url)
    late = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    fresh = milestone_emit(event=MilestoneEventFactory()).idempotency_key
    overdue = timezone.now() - timedelta(seconds=tasks.SWEEP_MARGIN_S + 5)
    Delivery.objects.filter(idempotency_key=late).update(next_attempt_at=overdue)
    assert tasks.sweep() == 1
    assert (_delivery(late).status, _delivery(fresh).status) == (Status.DELIVERED, Status.PENDING)


@pytest.mark.django_db
def test_sweep_schedule_exists_after_migrate_and_is_ensured_once():
    from django_q.models import Schedule

    tasks.sweep_schedule_ensure()
    tasks.sweep_schedule_ensure()
    schedule, = Schedule.objects.filter(name=tasks.SWEEP_SCHEDULE_NAME)
    assert (schedule.func, schedule.minutes) == (tasks.SWEEP_FUNC, 1)


def _overdue_pair() -> list[str]:
    TargetFactory(name="r")
    keys = [milestone_emit(event=MilestoneEventFactory()).idempotency_key for _ in range(2)]
    overdue = timezone.now() - timedelta(seconds=tasks.SWEEP_MARGIN_S + 5)
    Delivery.objects.filter(idempotency_key__in=keys).update(next_attempt_at=overdue)
    return keys


@pytest.mark.django_db
def test_sweep_records_each_attempt_before_it_starts_the_next(transport):
    # django-q kills a task at its timeout: what was sent but not yet recorded would be
    # sent again by every later sweep, and never reach dead-letter.
    from orchestrator_app.models import DeliveryAttempt

    _overdue_pair()
    recorded_before_each_send = []

    class Counting:
        def post(self, url, **kwargs):
            recorded_before_each_send.append(
                DeliveryAttempt.objects.exclude(outcome="started").count())
            return transport.post(url, **kwargs)

    assert tasks.sweep(transport=Counting()) == 2
    assert recorded_before_each_send == [0, 1]


@pytest.mark.django_db
def test_sweep_starts_no_attempt_once_its_time_budget_is_spent(transport):
    first, second = _overdue_pair()
    assert tasks.sweep(transport=transport, budget_s=0) == 1
    statuses = sorted(_delivery(k).status for k in (first, second))
    assert statuses == [Status.DELIVERED, Status.PENDING]


@pytest.fixture
def hostile():
    from tests.orchestrator.hostile import HostileReceiver

    made = HostileReceiver()
    yield made
    made.stop()


@pytest.mark.slow
def test_a_target_that_hangs_does_not_delay_deliveries_to_the_others(worker, hostile):
    TargetFactory(name="hangs", url=hostile.url("silent"), timeout_s=30)
    TargetFactory(name="healthy", url=hostile.url("ok"))
    for _ in range(6):
        milestone_emit(event=MilestoneEventFactory())
    delivered = Delivery.objects.filter(target="healthy", status=Status.DELIVERED)
    wait_for(lambda: delivered.count() == 6, timeout=20, what="the healthy target's deliveries")
    # All of them, while every attempt to the hanging target is still unanswered.
    assert list(Delivery.objects.filter(target="hangs").values_list("attempts", flat=True)) \
        == [0] * 6
    assert len(hostile.seen("silent")) <= 4  # its share of the worker's threads, no more


@pytest.mark.slow
def test_worker_sends_a_backfilled_backlog_to_a_batch_target_in_batches(worker, receiver):
    from orchestrator_app.services.backfill import milestones_backfill

    TargetFactory(name="r", url=receiver.url, supports_batch=True)
    lines = [(n, {"sentAtUtc": "2026-02-28T12:00:00.000Z",
                  "event": MilestoneEventFactory(milestoneId=f"worker.batch.{n}")})
             for n in range(1, 61)]
    assert milestones_backfill(lines=lines, actor="test").emitted == 60  # one transaction

    wait_for(lambda: Delivery.objects.filter(status=Status.DELIVERED).count() == 60,
             timeout=60, what="the 60 backfilled deliveries delivered by the worker")
    log = receiver.log()
    assert all(e["path"].endswith("/batch") for e in log), [e["path"] for e in log]
    sent = sorted(k for e in log for k in e["keys"])
    assert sent == sorted(Delivery.objects.values_list("idempotency_key", flat=True))
    assert len(log) < 60, "the backlog went in batches"
