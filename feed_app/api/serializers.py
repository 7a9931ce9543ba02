"""Wire shapes of the feed API, for the OpenAPI document (SPEC §4-5)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from clawdbot import contract

# Field names are the wire's, camelCase (SPEC §2).

class EvidenceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=contract.EVIDENCE_TYPES)
    path = serializers.CharField()
    summary = serializers.CharField()
    ref = serializers.CharField(required=False)


class MilestoneSerializer(serializers.Serializer):
    milestoneId = serializers.CharField()
    timestampUtc = serializers.DateTimeField()
    scope = serializers.CharField()
    claim = serializers.CharField()
    evidence = EvidenceSerializer(many=True)
    riskStatus = serializers.ChoiceField(choices=contract.RISK_STATUSES)
    nextAction = serializers.CharField()
    # Wire names below that match Field/Serializer attributes (source, errors) are fine: DRF's
    # metaclass moves declared fields off the class; the stubs cannot know that.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=contract.SOURCES, required=False)


class EnvelopeSerializer(serializers.Serializer):
    idempotencyKey = serializers.CharField(max_length=contract.IDEMPOTENCY_KEY_MAX_LENGTH)
    sentAtUtc = serializers.DateTimeField(required=False)
    event = MilestoneSerializer()


class IngestOkSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    milestoneId = serializers.CharField()


class BatchSerializer(serializers.Serializer):
    batchId = serializers.CharField(max_length=contract.IDEMPOTENCY_KEY_MAX_LENGTH)
    sentAtUtc = serializers.DateTimeField(required=False)
    envelopes = EnvelopeSerializer(many=True)


class BatchItemSerializer(serializers.Serializer):
    idempotencyKey = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    milestoneId = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)
    errors = serializers.DictField(  # type: ignore[assignment]  # wire name
        child=serializers.ListField(child=serializers.CharField()), required=False)


class BatchOkSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    batchId = serializers.CharField()
    results = BatchItemSerializer(many=True)


class RejectedSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.CharField()
    reason = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # wire name, see above
        child=serializers.ListField(child=serializers.CharField()), required=False)


class FeedItemSerializer(MilestoneSerializer):
    position = serializers.IntegerField()
    idempotencyKey = serializers.CharField()
    receivedAtUtc = serializers.DateTimeField()


class FeedPageSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    items = FeedItemSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class FeedOneSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    item = FeedItemSerializer()


class DeadLetterItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    timestampUtc = serializers.DateTimeField()
    reason = serializers.CharField()
    reasonCode = serializers.CharField()
    httpStatus = serializers.IntegerField()
    idempotencyKey = serializers.CharField(required=False)
    errors = serializers.DictField()  # type: ignore[assignment]  # wire name, see above
    scheme = serializers.CharField()
    remoteAddr = serializers.CharField()
    bodySha256 = serializers.CharField()
    bodyBytes = serializers.IntegerField()
    count = serializers.IntegerField(help_text="rejections in this row (1 unless aggregate)")
    aggregate = serializers.BooleanField(
        help_text="past the per-address, per-minute limit: one row counts the rest")
    lastAtUtc = serializers.DateTimeField()


class DeadLetterPageSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    items = DeadLetterItemSerializer(many=True)
    count = serializers.IntegerField(help_text="rows; exact up to 10,000, estimated past it")
    countExact = serializers.BooleanField()


def _header(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.HEADER, required=False,
                            description=description)


INGEST_HEADERS = [
    _header(contract.LEGACY_SIGNATURE_HEADER,
            "Legacy scheme: lowercase hex HMAC-SHA256 of the envelope's canonical JSON."),
    _header(contract.LEGACY_TIMESTAMP_HEADER,
            "Legacy scheme: the sender's ISO-8601 time (required with the signature)."),
    _header(contract.WEBHOOK_ID_HEADER, "Standard Webhooks: equals the idempotencyKey."),
    _header(contract.WEBHOOK_TIMESTAMP_HEADER, "Standard Webhooks: Unix seconds (±5 min)."),
    _header(contract.WEBHOOK_SIGNATURE_HEADER,
            "Standard Webhooks: space-separated 'v1,<base64>' entries."),
]
