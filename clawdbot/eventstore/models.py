"""Tables of the event store: the append-only log, projection checkpoints, the stream index."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Event(models.Model):
    """One immutable event. ``position`` orders the whole log; (stream, version) one stream.

    Written only by ``clawdbot.eventstore.store.append``; the database refuses UPDATE,
    DELETE and TRUNCATE on this table (migration 0001's triggers).
    """

    position = models.BigAutoField(primary_key=True)
    stream_id = models.CharField(max_length=255)
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=100)
    data = models.JSONField()
    metadata = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "eventstore_event"
        constraints = [
            models.UniqueConstraint(fields=["stream_id", "version"], name="event_stream_version"),
        ]
        indexes = [models.Index(fields=["type", "position"], name="event_type_position")]
        ordering = ["position"]

    def __str__(self) -> str:
        return f"#{self.position} {self.type} {self.stream_id}@{self.version}"


class ProjectionCheckpoint(models.Model):
    """How far a tracked projection has applied the log; written with its read-model rows."""

    name = models.CharField(max_length=100, primary_key=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "eventstore_checkpoint"

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class StreamIndex(models.Model):
    """Projection: one row per stream (its length and where it starts and ends in the log)."""

    stream_id = models.CharField(max_length=255, primary_key=True)
    version = models.PositiveIntegerField()
    first_position = models.BigIntegerField()
    last_position = models.BigIntegerField()
    last_type = models.CharField(max_length=100)
    last_recorded_at = models.DateTimeField()

    class Meta:
        db_table = "eventstore_stream_index"
        verbose_name_plural = "stream index"

    def __str__(self) -> str:
        return f"{self.stream_id}@{self.version}"
