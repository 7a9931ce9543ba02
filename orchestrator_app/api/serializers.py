"""Wire shapes of the orchestrator API (SPEC §7)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from clawdbot import contract
from clawdbot.contract import js_iso_timestamp
from orchestrator_app.health import success_rate
from orchestrator_app.models import HTTP_URL, Delivery, Status, Target
from orchestrator_app.retry import parse_schedule
from orchestrator_app.services.targets import fingerprints

# Field names are the wire's, camelCase (SPEC §7).


class ContextSerializer(serializers.Serializer):
    sourceTaskId = serializers.CharField(required=False, allow_blank=True)
    sourceRunId = serializers.CharField(required=False, allow_blank=True)
    actor = serializers.CharField(required=False, allow_blank=True)


class EmitRequestSerializer(serializers.Serializer):
    """``{"event": {...}, "context": {...}}``; a bare milestone event is accepted too."""

    event = serializers.JSONField()
    # A wire name. DRF's metaclass moves declared fields off the class, so this does not
    # shadow Field.context at runtime; the stubs cannot know that.
    context = ContextSerializer(required=False)  # type: ignore[assignment]

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("event"), dict):
            data = {"event": data}
        return super().to_internal_value(data)


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Printable ASCII, at most 200 characters; becomes the envelope's "
    "idempotencyKey. A retry with the same key and body gets the first answer (header "
    "Idempotent-Replayed: true) and emits nothing; another body with the key is a 409.")


class QueuedDeliverySerializer(serializers.Serializer):
    deliveryId = serializers.CharField(source="delivery_id")
    target = serializers.CharField()
    status = serializers.CharField()
    nextAttemptAtUtc = serializers.CharField(source="next_attempt_at_utc")


class EmitResponseSerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=True)
    idempotencyKey = serializers.CharField(source="idempotency_key")
    milestoneId = serializers.CharField(source="milestone_id")
    sentAtUtc = serializers.CharField(source="sent_at_utc")
    deliveries = QueuedDeliverySerializer(many=True)


def _iso(value: Any) -> str | None:
    return js_iso_timestamp(value) if value else None


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField()
    idempotencyKey = serializers.CharField(source="idempotency_key")
    milestoneId = serializers.CharField(source="milestone_id")
    target = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    attempts = serializers.IntegerField()
    lastStatusCode = serializers.IntegerField(source="last_status_code")
    lastError = serializers.CharField(source="last_error")
    lastAttemptAtUtc = serializers.SerializerMethodField()
    nextAttemptAtUtc = serializers.SerializerMethodField()
    createdAtUtc = serializers.SerializerMethodField()

    def get_lastAttemptAtUtc(self, obj: Delivery) -> str | None:
        return _iso(obj.last_attempt_at)

    def get_nextAttemptAtUtc(self, obj: Delivery) -> str | None:
        return _iso(obj.next_attempt_at)

    def get_createdAtUtc(self, obj: Delivery) -> str | None:
        return _iso(obj.created_at)


class DeliveryQuerySerializer(serializers.Serializer):
    status = serializers.MultipleChoiceField(choices=Status.choices, required=False)
    target = serializers.CharField(required=False, default="")
    milestoneId = serializers.CharField(required=False, default="")
    cursor = serializers.CharField(required=False, default="")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)


# --- Targets (SPEC §7) ----------------------------------------------------------------------

#: Wire name -> model field, for the settings an operator writes.
TARGET_FIELDS = {"url": "url", "active": "is_active", "signingSecret": "legacy_secrets",
                 "webhookSecret": "webhook_secrets", "retrySchedule": "retry_schedule",
                 "timeoutSeconds": "timeout_s", "supportsBatch": "supports_batch"}
TARGET_WIRE = {model: wire for wire, model in TARGET_FIELDS.items()}


def _secret_list(value: str) -> str:
    listed = [part.strip() for part in value.split(",") if part.strip()]
    if not listed:
        raise serializers.ValidationError("give one secret, or several comma-separated")
    return ",".join(listed)


class TargetWriteSerializer(serializers.Serializer):
    """What an operator sends: every field optional on PATCH; ``name`` only on POST."""

    name = serializers.SlugField(max_length=100, required=False)
    url = serializers.URLField(max_length=500, required=False, allow_blank=True,
                               validators=[HTTP_URL])
    active = serializers.BooleanField(required=False)
    signingSecret = serializers.CharField(required=False, write_only=True, min_length=16,
                                          help_text="Write-only; comma-separated, the first "
                                          "signs. Replaces the ones held.")
    webhookSecret = serializers.CharField(required=False, write_only=True,
                                          help_text="Write-only whsec_…; comma-separated.")
    retrySchedule = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=7 * 24 * 3600), required=False,
        max_length=20, allow_empty=True, help_text="Seconds between attempts; [] = the default")
    timeoutSeconds = serializers.FloatField(required=False, min_value=0.1, max_value=300)
    supportsBatch = serializers.BooleanField(required=False)

    def validate_signingSecret(self, value: str) -> str:
        return _secret_list(value)

    def validate_webhookSecret(self, value: str) -> str:
        value = _secret_list(value)
        for secret in value.split(","):
            if not contract.webhook_secret_valid(secret):
                raise serializers.ValidationError(
                    "a webhook secret is 'whsec_' followed by base64 of its key")
        return value

    def model_values(self) -> dict[str, Any]:
        """The validated fields as model field values."""
        data = dict(self.validated_data)
        data.pop("name", None)
        if "retrySchedule" in data:
            data["retrySchedule"] = ",".join(f"{s:g}" for s in data["retrySchedule"])
        return {TARGET_FIELDS[k]: v for k, v in data.items()}


class RotateSecretSerializer(serializers.Serializer):
    signingSecret = serializers.CharField(required=False, write_only=True, min_length=16)
    webhookSecret = serializers.CharField(required=False, write_only=True)

    def validate_webhookSecret(self, value: str) -> str:
        if not contract.webhook_secret_valid(value.strip()):
            raise serializers.ValidationError(
                "a webhook secret is 'whsec_' followed by base64 of its key")
        return value.strip()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("give signingSecret, webhookSecret or both")
        if "," in attrs.get("signingSecret", ""):
            raise serializers.ValidationError({"signingSecret": ["one secret, no comma"]})
        return attrs

    def model_values(self) -> dict[str, str]:
        return {TARGET_FIELDS[k]: v.strip() for k, v in self.validated_data.items()}


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, allow_blank=False)


class TargetSerializer(serializers.Serializer):
    """A target as the API shows it: settings, secrets as fingerprints, health (read-only)."""

    name = serializers.CharField()
    url = serializers.SerializerMethodField()
    active = serializers.BooleanField(source="is_active")
    paused = serializers.SerializerMethodField()
    pausedReason = serializers.CharField(source="paused_reason")
    signingSecretFingerprints = serializers.SerializerMethodField()
    webhookSecretFingerprints = serializers.SerializerMethodField()
    retrySchedule = serializers.SerializerMethodField()
    timeoutSeconds = serializers.FloatField(source="timeout_s")
    supportsBatch = serializers.BooleanField(source="supports_batch")
    lastStatus = serializers.SerializerMethodField()
    lastAttemptAtUtc = serializers.SerializerMethodField()
    successRate24h = serializers.SerializerMethodField()
    due = serializers.SerializerMethodField()

    def get_url(self, target: Target) -> str:
        return target.resolved_url()

    def get_paused(self, target: Target) -> bool:
        return target.paused_at is not None

    def get_signingSecretFingerprints(self, target: Target) -> list[str] | None:
        """``null``: the settings' secret signs (the default target)."""
        return fingerprints(target.legacy_secrets) if target.legacy_secrets else None

    def get_webhookSecretFingerprints(self, target: Target) -> list[str] | None:
        return fingerprints(target.webhook_secrets) if target.webhook_secrets else None

    def get_retrySchedule(self, target: Target) -> list[float]:
        return list(parse_schedule(target.schedule_text()))

    def get_lastStatus(self, target: Target) -> str | None:
        return getattr(target, "last_outcome", None)

    def get_lastAttemptAtUtc(self, target: Target) -> str | None:
        return _iso(getattr(target, "last_attempt_at", None))

    def get_successRate24h(self, target: Target) -> float | None:
        return success_rate(target)

    def get_due(self, target: Target) -> int:
        return int(getattr(target, "due", 0) or 0)
