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
        ]

    def __str__(self) -> str:
        return f"{self.milestone_id} ({self.idempotency_key})"


class DeadLetter(models.Model):
    """One rejected ingest request (projection of ``feed.ingest_rejected``).

    Holds what an operator needs to find and explain a rejection, never a secret: the
    signature headers are not kept, and of the body only a digest, its size and a short
    excerpt.
    """

    position = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField()
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
        db_table = "feed_dead_letter"
        ordering = ["-position"]
        indexes = [
            models.Index(fields=["reason_code", "-position"], name="feed_dead_letter_reason"),
            models.Index(fields=["idempotency_key"], name="feed_dead_letter_key"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.http_status} {self.reason_code}"
