"""Read models of the feed side: projections of ``feed.*`` events, rebuildable from the log."""

from __future__ import annotations

from django.db import models


class FeedItem(models.Model):
    """One accepted milestone (projection of ``feed.milestone_accepted``).

    ``position`` is the accepting event's position in the log, so the WebSocket catch-up can
    follow it; ``event`` is the milestone exactly as received and ``item`` its API form
    (``event`` plus position, idempotencyKey and receivedAtUtc), rendered once here so a
    feed page is a plain json_agg of stored values.
    """

    position = models.BigIntegerField(primary_key=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    milestone_id = models.TextField()
    timestamp = models.DateTimeField()
    scope = models.TextField()
    risk_status = models.CharField(max_length=20)
    source = models.CharField(max_length=20)
    event = models.JSONField()
    item = models.JSONField()
    received_at = models.DateTimeField()

    class Meta:
        db_table = "feed_item"
        ordering = ["-timestamp", "-position"]
        indexes = [
            models.Index(fields=["-timestamp", "-position"], name="feed_item_latest"),
            models.Index(fields=["scope", "-timestamp", "-position"], name="feed_item_scope"),
            models.Index(
                fields=["risk_status", "-timestamp", "-position"], name="feed_item_risk"
            ),
            models.Index(fields=["source", "-timestamp", "-position"], name="feed_item_source"),
            # The console's accepted-per-hour chart reads the last 24 hours of arrivals.
            models.Index(fields=["received_at"], name="feed_item_received"),
        ]

    def __str__(self) -> str:
        return f"{self.milestone_id} ({self.idempotency_key})"


class DeadLetter(models.Model):
    """One rejected ingest request, or an aggregate of many (SPEC §4-5).

    Not an event and not a projection: rejections need no global order, so they are
    written here directly, without the event log's append lock, and expire after
    ``MILESTONE_REJECTION_RETENTION_DAYS`` (``feed_app.tasks.rejections_expire``). Past
    ``MILESTONE_REJECTION_DETAILS_PER_MINUTE`` rejections from one address in one minute,
    the rest of that minute is counted in one ``aggregate`` row per reason (``count``,
    ``recorded_at`` = first, ``last_at`` = last) instead of stored one by one.

    Holds what an operator needs to find and explain a rejection, never a secret: the
    signature headers are not kept, and of the body only a digest, its size and a short
    excerpt.
    """

    id = models.BigAutoField(primary_key=True)
    recorded_at = models.DateTimeField()  # the first rejection of the row
    last_at = models.DateTimeField()  # the last one (= recorded_at unless aggregate)
    count = models.PositiveIntegerField(default=1)
    aggregate = models.BooleanField(default=False)
    window_start = models.DateTimeField(null=True, blank=True)  # the minute aggregated
    http_status = models.PositiveSmallIntegerField()
    reason_code = models.CharField(max_length=40)
    reason = models.TextField()
    errors = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=200, blank=True)  # "" when unknown
    scheme = models.CharField(max_length=20)
    remote_addr = models.CharField(max_length=64, blank=True)
    body_sha256 = models.CharField(max_length=64)
    body_bytes = models.BigIntegerField()
    body_excerpt = models.TextField(blank=True)

    class Meta:
        db_table = "feed_rejection"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["reason_code", "-id"], name="feed_rejection_reason"),
            models.Index(fields=["idempotency_key"], name="feed_rejection_key"),
            models.Index(fields=["last_at"], name="feed_rejection_last_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_addr", "window_start", "reason_code"],
                condition=models.Q(aggregate=True),
                name="feed_rejection_one_aggregate",
            ),
        ]

    def __str__(self) -> str:
        if self.aggregate:
            return f"#{self.pk} {self.http_status} {self.reason_code} x{self.count}"
        return f"#{self.pk} {self.http_status} {self.reason_code}"


class RejectionWindow(models.Model):
    """Rejections counted per client address and minute: the rate limit's state."""

    pk = models.CompositePrimaryKey("remote_addr", "minute")
    remote_addr = models.CharField(max_length=64)
    minute = models.DateTimeField()
    hits = models.PositiveIntegerField()

    class Meta:
        db_table = "feed_rejection_window"
        indexes = [models.Index(fields=["minute"], name="feed_rejection_window_minute")]

    def __str__(self) -> str:
        return f"{self.remote_addr} {self.minute:%Y-%m-%d %H:%M}: {self.hits}"


class DuplicateHour(models.Model):
    """Duplicate ingests counted per hour (the console's ingest chart): a duplicate stores
    nothing else, so this is the one trace of it. One row per hour, kept as long as
    rejection details (``feed_app.tasks.rejections_expire``)."""

    hour = models.DateTimeField(primary_key=True)
    count = models.BigIntegerField()

    class Meta:
        db_table = "feed_duplicate_hour"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00: {self.count}"
