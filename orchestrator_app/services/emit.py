"""Emit: the one service behind every entry point (Python, REST, CLI, backfill, seed)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clawdbot.contract import (
    JsonInvalid,
    MilestoneInvalid,
    canonical_json,
    envelope_bytes,
    js_iso_timestamp,
    validate_milestone,
)
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import Expect
from orchestrator_app import events as ev
from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.models import DEFAULT_TARGET, Status, Target
from orchestrator_app.selectors import targets_active
from orchestrator_app.wake import outbox_wake

CONTEXT_KEYS = ("sourceTaskId", "sourceRunId", "actor")


@dataclass(frozen=True)
class QueuedDelivery:
    delivery_id: str
    target: str
    status: str
    next_attempt_at_utc: str


@dataclass(frozen=True)
class EmitResult:
    idempotency_key: str
    milestone_id: str
    sent_at_utc: str
    event: dict[str, Any]
    deliveries: tuple[QueuedDelivery, ...]


def milestone_validate(*, event: Any) -> dict[str, Any]:
    """The event as it will be sent: valid (else MilestoneRejected) with a ``Z`` timestamp.

    The reference receiver's schema accepts only ``Z`` timestamps, so an offset is
    rewritten to the same instant in UTC, formatted as JavaScript does.
    """
    try:
        milestone = validate_milestone(event)
    except MilestoneInvalid as exc:
        raise MilestoneRejected("invalid milestone", errors=exc.errors) from None
    clean = {**milestone.raw, "timestampUtc": js_iso_timestamp(milestone.timestamp)}
    _check_signable(clean)
    return clean


def _check_signable(event: dict[str, Any]) -> None:
    """Refuse what the canonical form (so the legacy signature, and the receiver's parser)
    refuses, e.g. nesting past its depth limit: accepted, it could only dead-letter."""
    try:
        canonical_json({"event": event})
    except JsonInvalid:
        errors = {}
        for key, value in event.items():
            try:
                canonical_json({"event": {key: value}})
            except JsonInvalid as exc:
                errors[key] = [f"Cannot be signed: {exc}."]
        raise MilestoneRejected("invalid milestone", errors=errors) from None


def _context(context: Mapping[str, Any] | None) -> dict[str, str]:
    if context is not None and not isinstance(context, Mapping):  # e.g. from a JSON file
        raise MilestoneRejected("invalid context", errors={"context": ["must be an object"]})
    errors = {f"context.{k}": ["must be a string"] for k, v in (context or {}).items()
              if k in CONTEXT_KEYS and v is not None and not isinstance(v, str)}
    if errors:
        raise MilestoneRejected("invalid context", errors=errors)
    return {k: v for k, v in (context or {}).items() if k in CONTEXT_KEYS and v}


def target_default_ensure() -> None:
    """Create the ``default`` target (URL and secrets from settings) if
    ``MILESTONE_INGEST_URL`` is set and it does not exist yet. Emit and replay call it
    before they read the active targets; a concurrent creation is not an error."""
    if settings.MILESTONE_INGEST_URL and not Target.objects.filter(name=DEFAULT_TARGET).exists():
        Target.objects.bulk_create([Target(name=DEFAULT_TARGET)], ignore_conflicts=True)


@transaction.atomic(durable=True)
def milestone_emit(
    *,
    event: Any,
    context: Mapping[str, Any] | None = None,
    actor: str = "",
    sent_at: datetime | None = None,
    idempotency_key: str | None = None,
    targets: list[Target] | None = None,
) -> EmitResult:
    """Validate, record and queue one milestone for every active target (or ``targets``).

    One transaction: the ``milestone_emitted`` event and one ``delivery_queued`` per target.
    After commit the JSONL log line is written and the dispatchers are woken. A given
    ``idempotency_key`` that was used before raises ``ConcurrencyError`` (nothing written).
    """
    clean = milestone_validate(event=event)
    ctx = _context(context)
    if targets is None:
        target_default_ensure()
        targets = targets_active()
    key = idempotency_key or secrets.token_hex(16)
    now = timezone.now()
    sent_at_utc = js_iso_timestamp(sent_at or now)
    due = js_iso_timestamp(now)
    queued = tuple(
        QueuedDelivery(str(uuid.uuid4()), t.name, Status.PENDING, due)
        for t in targets
    )
    # Serialised once, here: every attempt to every target sends (and signs) these bytes.
    envelope = envelope_bytes({"idempotencyKey": key, "sentAtUtc": sent_at_utc, "event": clean})
    new_events = [ev.event(ev.MILESTONE_EMITTED, actor, idempotencyKey=key, sentAtUtc=sent_at_utc,
                           event=clean, envelope=envelope.decode("utf-8"), context=ctx,
                           actor=actor)]
    new_events += [
        ev.event(ev.DELIVERY_QUEUED, actor, deliveryId=q.delivery_id, idempotencyKey=key,
                 milestoneId=clean["milestoneId"], target=q.target, nextAttemptAtUtc=due)
        for q in queued
    ]
    projections.record(ev.milestone_stream(key), new_events, expected_version=Expect.NO_STREAM)
    outbox_wake()
    line = {"sentAtUtc": sent_at_utc, "event": clean}
    transaction.on_commit(lambda: milestone_log_append(line=line))
    return EmitResult(key, clean["milestoneId"], sent_at_utc, clean, queued)


def milestone_log_append(*, line: Mapping[str, Any]) -> None:
    """Append one line to ``MILESTONE_LOG_PATH`` in the reference's format, in one write."""
    path = settings.MILESTONE_LOG_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    with open(path, "ab") as log:
        log.write(data)
