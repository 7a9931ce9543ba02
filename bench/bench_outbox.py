"""Outbox: delivery throughput, emit-to-first-attempt latency, retry punctuality.

All three run against one real ``manage.py qcluster`` with one worker process (so one
dispatcher) and the verifying receiver of the tests (``tests/orchestrator/receiver.py``,
both signature schemes checked on every request), over HTTP on localhost.

* ``delivery_per_s``: ``BENCH_OUTBOX_DELIVERIES`` milestones queued to a paused target,
  then the target is resumed; deliveries recorded per second until the last is delivered.
* ``emit_to_first_attempt_p50_ms`` / ``_p99_ms``: ``BENCH_OUTBOX_EMITS`` emits one at a
  time; from the start of the ``milestone_emit`` call to the start of the first attempt.
* ``retry_lateness_p99_s``: the receiver answers 503; each delivery retries on a 1 s
  schedule; how long after its ``nextAttemptAt`` each retry started.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

RATIOS: list[tuple[str, str, str]] = []
BASE = Path(__file__).resolve().parent.parent
DELIVERIES = int(os.environ.get("BENCH_OUTBOX_DELIVERIES", "1000"))
EMITS = int(os.environ.get("BENCH_OUTBOX_EMITS", "200"))
RETRIES = int(os.environ.get("BENCH_OUTBOX_RETRIES", "100"))
TARGETS = "delivery_per_s >= 500, emit_to_first_attempt p50 <= 50 ms, p99 <= 250 ms, " \
          "retry_lateness_p99_s <= 2"


def run() -> dict[str, float]:
    from django.conf import settings

    from clawdbot.contract import generate_legacy_secret, generate_webhook_secret

    settings.MILESTONE_LOG_PATH = Path(tempfile.mkdtemp()) / "bench-milestones.jsonl"
    legacy, webhook = generate_legacy_secret(), generate_webhook_secret()
    receiver, base = _start([str(BASE / "tests/orchestrator/receiver.py"),
                             "--legacy-secret", legacy, "--webhook-secret", webhook])
    fast, fast_base = _start([str(BASE / "bench/fast_receiver.py")])
    worker = subprocess.Popen([sys.executable, str(BASE / "manage.py"), "qcluster"],
                              env={**os.environ, "Q_WORKERS": "1"}, cwd=BASE,
                              start_new_session=True)
    try:
        target = _target("bench", f"{base}/internal/milestones/ingest", legacy, webhook)
        _wait_ready(target)
        quick = _target("bench-fast", f"{fast_base}/internal/milestones/ingest", legacy, webhook)
        results = {"delivery_per_s": _throughput(quick),
                   "delivery_per_s_verifying_receiver": _throughput(target)}
        results.update(_latency(target))
        httpx.post(f"{base}/_control", json={"default": {"status": 503}})
        results["retry_lateness_p99_s"] = _lateness(target)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        receiver.kill()
        fast.kill()
    print(f"   targets: {TARGETS}")
    return results


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"


def _target(name: str, url: str, legacy: str, webhook: str):
    from orchestrator_app.models import Target

    Target.objects.filter(name=name).delete()
    return Target.objects.create(name=name, url=url, legacy_secrets=legacy,
                                 webhook_secrets=webhook, retry_schedule="1,1,1,1")


def _emit(target) -> str:
    from orchestrator_app.services.emit import milestone_emit

    event = {"milestoneId": "bench.outbox", "timestampUtc": "2026-02-28T12:34:56.000Z",
             "scope": "bench", "claim": "Benchmark milestone.", "riskStatus": "on-track",
             "evidence": [{"type": "metric", "path": "bench", "summary": "bench"}],
             "nextAction": "Nothing."}
    return milestone_emit(event=event, targets=[target]).idempotency_key


def _status(keys: list[str], statuses: tuple[str, ...]) -> int:
    from orchestrator_app.models import Delivery

    return Delivery.objects.filter(idempotency_key__in=keys, status__in=statuses).count()


def _wait(condition, timeout: float, pause: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("benchmark timed out")
        time.sleep(pause)


def _wait_ready(target) -> None:
    key = _emit(target)
    _wait(lambda: _status([key], ("delivered",)) == 1, 60)


def _throughput(target) -> float:
    from orchestrator_app.models import Delivery
    from orchestrator_app.services.triage import target_pause, target_resume

    target_pause(name=target.name, actor="bench", reason="queue up")
    keys = [_emit(target) for _ in range(DELIVERIES)]
    started = time.time()
    target_resume(name=target.name, actor="bench", reason="go")
    # Poll gently (a tight poll over thousands of keys would load the database under
    # test); the end time is when the last delivery was recorded, not when we noticed.
    _wait(lambda: _status(keys, ("delivered",)) == len(keys), 600, pause=0.25)
    done = Delivery.objects.filter(idempotency_key__in=keys)
    assert done.filter(attempts=1).count() == len(keys)
    finished = max(done.values_list("updated_at", flat=True)).timestamp()
    return len(keys) / (finished - started)


def _latency(target) -> dict[str, float]:
    from orchestrator_app.models import DeliveryAttempt

    delays = []
    for _ in range(EMITS):
        started = time.time()
        key = _emit(target)
        _wait(lambda k=key: DeliveryAttempt.objects.filter(
            delivery__idempotency_key=k).exists(), 30)
        attempt = DeliveryAttempt.objects.get(delivery__idempotency_key=key)
        delays.append((attempt.attempted_at.timestamp() - started) * 1000)
        time.sleep(0.01)  # a quiet gap between emits, as in normal operation
    q = statistics.quantiles(delays, n=100)
    return {"emit_to_first_attempt_p50_ms": statistics.median(delays),
            "emit_to_first_attempt_p99_ms": q[98]}


def _lateness(target) -> float:
    from clawdbot.eventstore import store
    from orchestrator_app import events as ev

    keys = [_emit(target) for _ in range(RETRIES)]
    _wait(lambda: _status(keys, ("dead-letter",)) == len(keys), 120, pause=0.25)
    late = []
    for key in keys:
        due = None
        for e in store.read_stream(ev.milestone_stream(key)):
            if e.type == ev.DELIVERY_RETRY_SCHEDULED:
                due = e.data["nextAttemptAtUtc"]
            elif e.type == ev.DELIVERY_ATTEMPTED and due is not None:
                late.append(_seconds(e.data["attemptedAtUtc"]) - _seconds(due))
    return statistics.quantiles(late, n=100)[98]


def _seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()
