"""Wire shapes of the orchestrator API (SPEC §7)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from clawdbot.contract import js_iso_timestamp
from orchestrator_app.models import Delivery, Status

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
