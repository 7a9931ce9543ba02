"""Factories for the feed side: milestone events, envelopes and signed ingest requests."""

from __future__ import annotations

import time
from typing import Any

import factory
from django.conf import settings

from clawdbot import contract


class EvidenceFactory(factory.DictFactory):
    type = "log"
    path = "workspace/orchestrator_state.json"
    summary = "lastStartedAt set in orchestrator state"


class MilestoneFactory(factory.DictFactory):
    milestoneId = factory.Sequence(lambda n: f"runtime.validation.{n}")  # noqa: N815
    timestampUtc = factory.Sequence(  # noqa: N815
        lambda n: f"2026-02-28T12:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    )
    scope = "runtime"
    claim = "Orchestrator started successfully."
    evidence = factory.List([factory.SubFactory(EvidenceFactory)])
    riskStatus = "on-track"  # noqa: N815
    nextAction = "Monitor task queue for first incoming tasks."  # noqa: N815
    source = "orchestrator"


class EnvelopeFactory(factory.DictFactory):
    idempotencyKey = factory.Sequence(lambda n: f"key-{n:06d}")  # noqa: N815
    sentAtUtc = "2026-02-28T12:34:56.000Z"  # noqa: N815
    event = factory.SubFactory(MilestoneFactory)


def legacy_secrets() -> list[str]:
    return contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)


def webhook_secrets() -> list[str]:
    return contract.parse_secret_list(settings.MILESTONE_WEBHOOK_SECRET)


def signed(
    envelope: dict[str, Any] | None = None,
    *,
    legacy: bool = True,
    webhook: bool = False,
    body: bytes | None = None,
    now: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and headers signed as the reference sender signs them."""
    envelope = envelope if envelope is not None else EnvelopeFactory()
    body = body if body is not None else contract.envelope_bytes(envelope)
    headers = contract.signed_headers(
        body=body,
        idempotency_key=str(envelope.get("idempotencyKey", "")),
        legacy_secrets=legacy_secrets() if legacy else [],
        webhook_secrets=webhook_secrets() if webhook else [],
        now=time.time() if now is None else now,
    )
    return body, headers
