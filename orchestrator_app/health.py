"""Reads for operators: each target's health and the outbox at a glance.

Every read here is bounded whatever the tables hold: counts are capped
(``clawdbot.counting``), and everything about attempts reads a time window or the latest
rows of one target through the ``(target, attempted_at)`` and ``(attempted_at)`` indexes
(docs/OPERATIONS.md shows the plans).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from clawdbot.counting import COUNT_CAP, Count, capped_count
from orchestrator_app.models import (
    OPEN_STATUSES,
    Delivery,
    Status,
    Target,
)

#: Attempt outcomes that mean the target took the milestone.
SUCCESS_OUTCOMES = ("delivered", "duplicate")
#: Attempt outcomes shown as "failed" (will be, or was, tried again), as against rejected.
FAILED_OUTCOMES = ("retrying", "dead-letter", "interrupted")
WINDOW = timedelta(hours=24)

_ATTEMPTS = "orchestrator_delivery_attempt"
_FINISHED = f"{_ATTEMPTS} a WHERE a.target = orchestrator_target.name AND a.outcome <> 'started'"
_OK = "('delivered', 'duplicate')"
# A target's deliveries due at %s, read through the delivery_target_due index.
_DUE_NOW = ("FROM orchestrator_delivery d WHERE d.target = orchestrator_target.name "
            "AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= %s")
# Correlated with the target row; each reads the (target, attempted_at) index of one target.
_HEALTH = {
    "last_outcome": f"SELECT a.outcome FROM {_FINISHED} ORDER BY a.attempted_at DESC LIMIT 1",
    "last_attempt_at": f"SELECT a.attempted_at FROM {_FINISHED} "
                       "ORDER BY a.attempted_at DESC LIMIT 1",
    "attempts_24h": f"SELECT count(*) FROM {_FINISHED} AND a.attempted_at >= %s",
    "successes_24h": f"SELECT count(*) FROM {_FINISHED} AND a.attempted_at >= %s "
                     f"AND a.outcome IN {_OK}",
    # The first attempt since the last success (or ever): empty while the last one succeeded.
    "failing_since": f"SELECT a.attempted_at FROM {_FINISHED} AND a.attempted_at > coalesce(("
                     f"SELECT b.attempted_at FROM {_ATTEMPTS} b WHERE b.target = "
                     f"orchestrator_target.name AND b.outcome IN {_OK} "
                     "ORDER BY b.attempted_at DESC LIMIT 1), '-infinity') "
                     "ORDER BY a.attempted_at LIMIT 1",
    "due": f"SELECT count(*) FROM (SELECT 1 {_DUE_NOW} LIMIT %s) capped",
    "undeliverable": "SELECT count(*) FROM (SELECT 1 FROM orchestrator_delivery d WHERE "
                     "d.target = orchestrator_target.name AND d.status IN "
                     "('rejected', 'dead-letter') LIMIT %s) capped",
}


def targets_with_health(queryset: QuerySet[Target], *, now: datetime) -> QuerySet[Target]:
    """``queryset`` with each target's health as attributes: ``last_outcome``,
    ``last_attempt_at``, ``attempts_24h`` and ``successes_24h`` (the 24 hours before
    ``now``), ``failing_since``, ``due`` and ``undeliverable`` (counted up to
    ``COUNT_CAP + 1``), and its pause (``select_related``)."""
    since = now - WINDOW
    params: dict[str, list[object]] = {
        "attempts_24h": [since], "successes_24h": [since], "due": [now, COUNT_CAP + 1],
        "undeliverable": [COUNT_CAP + 1]}
    return queryset.select_related("pause").annotate(**{
        name: RawSQL(f"({sql})", params.get(name, [])) for name, sql in _HEALTH.items()})


def targets_due(*, now: datetime) -> list[tuple[str, int, datetime | None]]:
    """Each target's deliveries due at ``now`` (counted up to ``COUNT_CAP + 1``) and the
    due time of the oldest of them, by name."""
    return list(Target.objects.order_by("name").annotate(
        due=RawSQL(f"({_HEALTH['due']})", [now, COUNT_CAP + 1]),
        oldest_due_at=RawSQL(f"(SELECT min(d.next_attempt_at) {_DUE_NOW})", [now]),
    ).values_list("name", "due", "oldest_due_at"))


def success_rate(target: Target) -> float | None:
    """The share of the last 24 hours' attempts that succeeded (``None``: none were made)."""
    made = getattr(target, "attempts_24h", 0)
    return getattr(target, "successes_24h", 0) / made if made else None


@dataclass(frozen=True)
class Backlog:
    due: Count
    oldest_due_at: datetime | None


@dataclass(frozen=True)
class OutboxOverview:
    by_status: dict[str, Count]
    by_target: list[Target]
    backlog: Backlog
    hourly: list[tuple[datetime, dict[str, int]]]  # 24 hours, oldest first
    attempt_ms: tuple[float | None, float | None]  # p50, p95 of attempt durations
    delivered_ms: tuple[float | None, float | None]  # p50, p95 from queued to delivered


def backlog(*, now: datetime) -> Backlog:
    """What is due at ``now`` (counted up to the cap) and since when the oldest is."""
    due = Delivery.objects.filter(status__in=OPEN_STATUSES, next_attempt_at__lte=now)
    oldest = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    return Backlog(capped_count(due), oldest)


#: The ``application_name`` of each dispatcher's listening connection (``dispatcher``).
DISPATCHER_APPLICATION = "clawdbot-dispatcher"
#: A dispatcher runs a statement on that connection this often (its heartbeat) ...
HEARTBEAT_S = 5.0
#: ... and one silent for longer than this is not alive.
HEARTBEAT_STALE_S = 3 * HEARTBEAT_S


@dataclass(frozen=True)
class Workers:
    alive: int  # dispatchers whose heartbeat is fresh
    last_heartbeat: datetime | None


def workers_alive() -> Workers:
    """The dispatchers (one per worker process, on any host) and their last heartbeat.

    Read from ``pg_stat_activity``, so nothing is written for it: a dispatcher holds its
    LISTEN connection for its whole life and runs a statement on it every ``HEARTBEAT_S``
    (``state_change``), and a worker that dies closes it. The web and the worker connect
    as the same role, which sees its own sessions' times.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE state_change > now() - make_interval(secs => %s)),"
            " max(state_change) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s", [HEARTBEAT_STALE_S, DISPATCHER_APPLICATION])
        alive, last = cursor.fetchone()
    return Workers(int(alive), last)


def outbox_overview(*, now: datetime) -> OutboxOverview:
    by_status = {s.value: capped_count(Delivery.objects.filter(status=s.value)) for s in Status}
    return OutboxOverview(
        by_status=by_status,
        by_target=list(targets_with_health(Target.objects.order_by("name"), now=now)[:50]),
        backlog=backlog(now=now),
        hourly=attempts_hourly(now=now),
        attempt_ms=_percentiles(
            f"SELECT {_P} FROM {_ATTEMPTS} WHERE attempted_at >= %s AND outcome <> 'started' "
            "AND status_code IS NOT NULL", now),
        delivered_ms=_percentiles(
            f"SELECT {_P.replace('duration_ms', 'ms')} FROM (SELECT extract(epoch FROM "
            "a.attempted_at - d.created_at) * 1000 + a.duration_ms AS ms "
            f"FROM {_ATTEMPTS} a JOIN orchestrator_delivery d ON d.id = a.delivery_id "
            f"WHERE a.attempted_at >= %s AND a.outcome IN {_OK}) x", now),
    )


_P = ("percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), "
      "percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)")


def _percentiles(sql: str, now: datetime) -> tuple[float | None, float | None]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [now - WINDOW])
        p50, p95 = cursor.fetchone()
    return p50, p95


def hours(now: datetime) -> list[datetime]:
    """The starts of the 24 hours up to ``now``'s hour, oldest first."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=n) for n in range(23, -1, -1)]


def attempts_hourly(*, now: datetime) -> list[tuple[datetime, dict[str, int]]]:
    """Attempts per hour over the last 24 hours: delivered, failed and rejected."""
    slots = {h: {"delivered": 0, "failed": 0, "rejected": 0} for h in hours(now)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('hour', attempted_at), outcome, count(*) FROM {_ATTEMPTS} "
            "WHERE attempted_at >= %s GROUP BY 1, 2", [min(slots)])
        for hour, outcome, n in cursor.fetchall():
            kind = ("delivered" if outcome in SUCCESS_OUTCOMES else
                    "rejected" if outcome == Status.REJECTED else
                    "failed" if outcome in FAILED_OUTCOMES else None)
            if kind and hour in slots:
                slots[hour][kind] += n
    return list(slots.items())


