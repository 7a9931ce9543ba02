"""Reads for operators: ingest per hour and the dead letter at a glance, bounded.

Accepted milestones are counted from ``feed_item.received_at`` (indexed), rejections from
``feed_rejection.last_at`` (indexed, and an aggregate row stands for ``count`` of them),
over the last 24 hours only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from clawdbot.counting import Count, capped_count
from feed_app.models import DeadLetter

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class IngestOverview:
    hourly: list[tuple[datetime, dict[str, int]]]  # 24 hours, oldest first
    rejections_24h: int
    dead_letter_rows: Count


def _hours(now: datetime) -> list[datetime]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=n) for n in range(23, -1, -1)]


def ingest_overview(*, now: datetime) -> IngestOverview:
    slots = {h: {"accepted": 0, "duplicate": 0, "rejected": 0} for h in _hours(now)}
    start = min(slots)
    with connection.cursor() as cursor:
        cursor.execute("SELECT date_trunc('hour', received_at), count(*) FROM feed_item "
                       "WHERE received_at >= %s GROUP BY 1", [start])
        for hour, n in cursor.fetchall():
            if hour in slots:
                slots[hour]["accepted"] += n
        cursor.execute("SELECT hour, count FROM feed_duplicate_hour WHERE hour >= %s", [start])
        for hour, n in cursor.fetchall():
            if hour in slots:
                slots[hour]["duplicate"] += int(n)
        cursor.execute("SELECT date_trunc('hour', last_at), sum(count) FROM feed_rejection "
                       "WHERE last_at >= %s GROUP BY 1", [start])
        for hour, n in cursor.fetchall():
            if hour in slots:
                slots[hour]["rejected"] += int(n)
    return IngestOverview(
        hourly=list(slots.items()),
        rejections_24h=sum(s["rejected"] for s in slots.values()),
        dead_letter_rows=capped_count(DeadLetter.objects.all()),
    )
