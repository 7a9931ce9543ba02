"""Outbox tables.

``Target`` is configuration, edited in the admin. ``EmittedMilestone``, ``Delivery``,
``DeliveryAttempt`` and ``TargetPause`` are the outbox projection
(``orchestrator_app.projections``): written only from ``outbox.*`` events, and
``rebuild_projections`` reproduces them. The one exception is the worker's claim on a
delivery (``lease_owner``, ``lease_expires_at``): it is coordination between live workers,
not history, is cleared by the outcome of the attempt it guards, and would mean nothing
after a rebuild, so it is written directly and never replayed.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from clawdbot.contract import parse_secret_list
from clawdbot.encryption import EncryptedTextField
from orchestrator_app.retry import parse_schedule


class Status(models.TextChoices):
    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    DEAD_LETTER = "dead-letter"
    DISCARDED = "discarded"


#: Statuses a worker may still attempt.
OPEN_STATUSES = (Status.PENDING, Status.RETRYING)
#: Statuses an operator triages: the target will not take these as they are.
UNDELIVERABLE_STATUSES = (Status.REJECTED, Status.DEAD_LETTER)

DEFAULT_TARGET = "default"


#: A target is reached over HTTP(S) only.
HTTP_URL = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// URL.")


class Target(models.Model):
    """A receiver of milestones. Empty URL/secrets on ``default`` mean "from settings"."""

    name = models.SlugField(max_length=100, unique=True)
    url = models.URLField(max_length=500, blank=True, validators=[HTTP_URL],
                          help_text="Ingest URL; empty on 'default' means MILESTONE_INGEST_URL.")
    sign_legacy = models.BooleanField(default=True, help_text="x-openclaw-* headers")
    sign_webhook = models.BooleanField(default=True, help_text="Standard Webhooks headers")
    # Encrypted at rest (clawdbot/encryption.py); read and written as the plain text.
    legacy_secrets = EncryptedTextField(
        blank=True, help_text="Comma-separated; the first signs. Empty: MILESTONE_SIGNING_SECRET."
    )
    webhook_secrets = EncryptedTextField(
        blank=True, help_text="Comma-separated whsec_…; the first signs. Empty: "
        "MILESTONE_WEBHOOK_SECRET."
    )
    is_active = models.BooleanField(default=True, help_text="Gets a delivery for new milestones.")
    timeout_s = models.FloatField(default=10.0)
    retry_schedule = models.CharField(
        max_length=500, blank=True,
        help_text="Seconds between attempts, comma-separated. Empty: MILESTONE_RETRY_SCHEDULE.",
    )
    supports_batch = models.BooleanField(
        default=False,
        help_text="Accepts POST <url>/batch (SPEC §10): due backlogs are sent in batches.",
    )

    class Meta:
        db_table = "orchestrator_target"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def resolved_url(self) -> str:
        return self.url or (settings.MILESTONE_INGEST_URL if self.name == DEFAULT_TARGET else "")

    def legacy_secret_list(self) -> list[str]:
        if not self.sign_legacy:
            return []
        return parse_secret_list(self.legacy_secrets or settings.MILESTONE_SIGNING_SECRET)

    def webhook_secret_list(self) -> list[str]:
        if not self.sign_webhook:
            return []
        return parse_secret_list(self.webhook_secrets or settings.MILESTONE_WEBHOOK_SECRET)

    @property
    def paused_at(self) -> datetime | None:
        """When the target was paused (``None``: it is not), from its ``TargetPause``."""
        pause = getattr(self, "pause", None)
        return pause.paused_at if pause is not None else None

    @property
    def paused_reason(self) -> str:
        pause = getattr(self, "pause", None)
        return pause.reason if pause is not None else ""

    def schedule_text(self) -> str:
        return self.retry_schedule or settings.MILESTONE_RETRY_SCHEDULE

    def clean(self) -> None:
        """Refuse, in the admin's form, values the worker could only fail on later."""
        errors = {}
        if not self.timeout_s > 0:  # also refuses nan
            errors["timeout_s"] = "Must be a positive number of seconds."
        try:
            parse_schedule(self.retry_schedule)
        except ValueError as exc:
            errors["retry_schedule"] = str(exc)
        if errors:
            raise ValidationError(errors)


class TargetPause(models.Model):
    """Projection: a paused target, from ``target_paused`` until ``target_resumed``.

    A row exists only while the target is paused; the dispatchers claim nothing for it.
    """

    target = models.OneToOneField(
        Target, to_field="name", db_column="target", primary_key=True, related_name="pause",
        on_delete=models.DO_NOTHING, db_constraint=False)
    paused_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    actor = models.CharField(max_length=200, blank=True)
    position = models.BigIntegerField(help_text="Log position of the pause event.")

    class Meta:
        db_table = "orchestrator_target_pause"

    def __str__(self) -> str:
        return f"{self.target_id} paused: {self.reason}"


class EmittedMilestone(models.Model):
    """Projection: one row per emitted milestone, the exact event and envelope time sent."""

    idempotency_key = models.CharField(max_length=200, primary_key=True)
    milestone_id = models.CharField(max_length=500, db_index=True)
    sent_at_utc = models.CharField(max_length=40)
    sent_at = models.DateTimeField(db_index=True)
    event = models.JSONField()
    envelope = models.TextField(
        help_text="The envelope exactly as every attempt sends it (UTF-8 JSON).")
    context = models.JSONField(default=dict)
    actor = models.CharField(max_length=200, blank=True)
    position = models.BigIntegerField()

    class Meta:
        db_table = "orchestrator_milestone"
        ordering = ["-position"]

    def __str__(self) -> str:
        return f"{self.milestone_id} ({self.idempotency_key})"


class Delivery(models.Model):
    """Projection: one milestone to one target, and where its delivery stands."""

    id = models.UUIDField(primary_key=True)
    idempotency_key = models.CharField(max_length=200)
    milestone_id = models.CharField(max_length=500, db_index=True)
    target = models.CharField(max_length=100, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    cycle_attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts since queued or last requeued; decides exhaustion."
    )
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="Last operator action and reason.")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    position = models.BigIntegerField(help_text="Log position of the last event applied.")
    # Not projected (see the module docstring).
    lease_owner = models.CharField(max_length=200, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "orchestrator_delivery"
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "target"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key", "target"],
                                    name="delivery_one_per_milestone_target"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due",
                         condition=models.Q(status__in=["pending", "retrying"])),
            # Each target's backlog (health, /metrics) without reading its finished rows.
            models.Index(fields=["target", "next_attempt_at"], name="delivery_target_due",
                         condition=models.Q(status__in=["pending", "retrying"])),
        ]

    def __str__(self) -> str:
        return f"{self.milestone_id} → {self.target} ({self.status})"


class DeliveryAttempt(models.Model):
    """Projection: one POST to a target; its primary key is its event's log position."""

    position = models.BigIntegerField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.DO_NOTHING, related_name="attempt_set",
                                 db_constraint=False)
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    duration_ms = models.FloatField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=20)
    worker = models.CharField(max_length=200, blank=True)
    target = models.CharField(max_length=100, blank=True, help_text="Its delivery's target.")
    request_headers = models.JSONField(
        default=dict, blank=True, help_text="As sent, signatures shortened (headers.py).")
    response_headers = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "orchestrator_delivery_attempt"
        ordering = ["position"]
        # Target health and the console's hourly charts read time windows of attempts.
        indexes = [
            models.Index(fields=["target", "attempted_at"], name="attempt_target_time"),
            models.Index(fields=["attempted_at"], name="attempt_time"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
