"""django-q2 tasks of the feed side: expiring rejection details (SPEC §4).

``rejections_expire`` runs every hour from a django-q2 Schedule (created by migration 0003
and again when a worker starts). Accepted milestones are events and are never deleted;
only the dead-letter's rejection rows and the rate limit's per-minute counters expire.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

RETENTION_SCHEDULE_NAME = "feed-rejection-retention"
RETENTION_FUNC = "feed_app.tasks.rejections_expire"
RETENTION_LOCK_KEY = 0x0C1A_7DB0_FEED
#: Rows deleted per statement, so a large backlog never holds one long transaction.
DELETE_CHUNK = 5000
#: Rate-limit counters older than this are of no use (the limit is per minute).
WINDOW_KEEP = timedelta(minutes=10)

_DELETE_REJECTIONS = """
DELETE FROM feed_rejection WHERE id IN (
    SELECT id FROM feed_rejection WHERE last_at < %s ORDER BY last_at LIMIT %s
)
"""


def rejections_expire(*, now: datetime | None = None) -> int:
    """Delete rejection rows last seen before the retention period; returns how many."""
    current = now or timezone.now()
    cutoff = current - timedelta(days=settings.MILESTONE_REJECTION_RETENTION_DAYS)
    deleted = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(_DELETE_REJECTIONS, [cutoff, DELETE_CHUNK])
            deleted += cursor.rowcount
            if cursor.rowcount < DELETE_CHUNK:
                break
        cursor.execute("DELETE FROM feed_rejection_window WHERE minute < %s",
                       [current - WINDOW_KEEP])
        cursor.execute("DELETE FROM feed_duplicate_hour WHERE hour < %s", [cutoff])
    if deleted:
        log.info("expired %d rejection rows recorded before %s", deleted, cutoff.isoformat())
    return deleted


def retention_schedule_ensure() -> None:
    """Create the retention Schedule if it is missing (idempotent; safe from many workers)."""
    from django_q.models import Schedule

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RETENTION_LOCK_KEY])
        if not Schedule.objects.filter(name=RETENTION_SCHEDULE_NAME).exists():
            Schedule.objects.create(name=RETENTION_SCHEDULE_NAME, func=RETENTION_FUNC,
                                    schedule_type=Schedule.HOURLY, repeats=-1)
