"""``/metrics``: the pipeline in Prometheus' text format, the same whichever process answers.

Two kinds of figure, each from the one place that can count it right across processes:

- **Flows** (counters, a histogram) are counted where they happen, in prometheus-client's
  multiprocess mode: every process of a host (each web process, each django-q2 worker)
  writes its own file under ``PROMETHEUS_MULTIPROC_DIR`` (``var/metrics`` by default, set
  in settings before the library is imported), and a scrape sums them all. ``make run``
  empties the directory when it starts; under the Procfile each container has its own.
- **State** (gauges) is read from the database at each scrape, so every process and every
  host answers the same: deliveries by status, the backlog and the age of its oldest due
  delivery, dead letters on both sides, paused targets, live dispatchers, the event log's
  head. Each read is bounded, as everywhere operators look (``clawdbot.counting``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Ingest outcomes (accepted, duplicate, rejected) and, when rejected, the reason code
#: (SPEC §4). A batch counts each of its items.
INGEST = Counter("clawdbot_ingest", "Milestones received by the ingest, by outcome.",
                 ["status", "reason"])
#: The status each delivery attempt left its delivery in (delivered, duplicate, retrying,
#: rejected, dead-letter), and the operators' requeues (pending) and discards.
DELIVERIES = Counter("clawdbot_deliveries", "Delivery state changes, by target and status.",
                     ["target", "status"])
ATTEMPT_SECONDS = Histogram(
    "clawdbot_delivery_attempt_seconds", "Delivery attempts: time from request to answer.",
    ["target"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EMITTED = Counter("clawdbot_milestones_emitted", "Milestones emitted by the orchestrator.")
#: Open live-page WebSockets, summed over the processes alive now.
WS_CONNECTIONS = Gauge("clawdbot_ws_connections", "Open live-feed WebSocket connections.",
                       multiprocess_mode="livesum")


def directory_prepare(path: Path, *, empty: bool = False) -> None:
    """Create the multiprocess directory (and, with ``empty``, remove what earlier runs
    left: only when no process of this host is writing to it)."""
    path.mkdir(parents=True, exist_ok=True)
    if empty:
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)


def ingest_count(status: str, reason: str = "", n: int = 1) -> None:
    INGEST.labels(status, reason).inc(n)


def _forget_dead(path: str) -> None:
    """Drop the live gauges of this host's processes that have exited (a killed process
    never says so itself); their counters stay counted."""
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


class _State(Collector):
    """The gauges read from the database at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = _state_read()
        due = GaugeMetricFamily("clawdbot_outbox_due", "Deliveries due now, by target (exact "
                                "up to the count cap).", labels=["target"])
        oldest = GaugeMetricFamily(
            "clawdbot_outbox_oldest_due_seconds",
            "How long the oldest due delivery of each target has waited past its time.",
            labels=["target"])
        for target, count, waited in state.due:
            due.add_metric([target], count)
            oldest.add_metric([target], waited)
        yield due
        yield oldest
        deliveries = GaugeMetricFamily(
            "clawdbot_outbox_deliveries", "Deliveries by status now (exact up to the count "
            "cap, then the planner's estimate).", labels=["status"])
        for status, count in state.by_status.items():
            deliveries.add_metric([status], count)
        yield deliveries
        dead = GaugeMetricFamily("clawdbot_dead_letters", "Dead letters, by side.",
                                 labels=["side"])
        dead.add_metric(["outbox"], state.by_status["dead-letter"])
        dead.add_metric(["feed"], state.feed_dead_letters)
        yield dead
        yield GaugeMetricFamily("clawdbot_targets_paused", "Targets paused.",
                                value=state.targets_paused)
        yield GaugeMetricFamily("clawdbot_workers_alive",
                                "Outbox dispatchers with a fresh heartbeat (one per worker).",
                                value=state.workers)
        yield GaugeMetricFamily("clawdbot_event_log_position",
                                "The event log's last position.", value=state.head)


@dataclass(frozen=True)
class _Figures:
    due: list[tuple[str, int, float]]  # target, due, seconds the oldest has waited
    by_status: dict[str, int]
    feed_dead_letters: int
    targets_paused: int
    workers: int
    head: int


def _state_read() -> _Figures:
    from django.utils import timezone

    from clawdbot.counting import capped_count
    from clawdbot.eventstore import store
    from feed_app.models import DeadLetter
    from orchestrator_app.health import targets_due, workers_alive
    from orchestrator_app.models import Delivery, Status, TargetPause

    now = timezone.now()
    due = [(name, int(n), (now - oldest).total_seconds() if oldest else 0.0)
           for name, n, oldest in targets_due(now=now)]
    return _Figures(
        due=due,
        by_status={s.value: capped_count(Delivery.objects.filter(status=s.value)).value
                   for s in Status},
        feed_dead_letters=capped_count(DeadLetter.objects.all()).value,
        targets_paused=capped_count(TargetPause.objects.all()).value,
        workers=workers_alive().alive,
        head=store.last_position(),
    )


def exposition() -> tuple[bytes, str]:
    """The scrape: every process's flows, then the state; and its content type."""
    if values.ValueClass is values.MutexValue:  # counts of this process alone: wrong
        raise ImproperlyConfigured(
            f"prometheus_client was imported before {ENV} was set (clawdbot.settings sets "
            "it): the counts would be one process's, not the host's")
    registry = CollectorRegistry()
    _forget_dead(os.environ[ENV])
    multiprocess.MultiProcessCollector(registry, path=os.environ[ENV])
    registry.register(_State())
    return generate_latest(registry), CONTENT_TYPE_LATEST
