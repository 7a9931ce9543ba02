"""Emit: the one service behind every entry point (Python, REST, CLI, backfill, seed)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clawdbot import metrics
from clawdbot.contract import (
    JsonInvalid,
    MilestoneInvalid,
    canonical_json,
    envelope_bytes,
    js_iso_timestamp,
    validate_milestone,
)
from clawdbot.eventstore import projections, store
from clawdbot.eventstore.store import Append, ConcurrencyError, Expect, RecordedEvent
from orchestrator_app import events as ev
from orchestrator_app.exceptions import IdempotencyKeyReused, MilestoneRejected
from orchestrator_app.models import DEFAULT_TARGET, Status, Target
from orchestrator_app.selectors import targets_active
from orchestrator_app.services.milestone_log import milestone_log_catch_up_safely
from orchestrator_app.wake import outbox_wake

CONTEXT_KEYS = ("sourceTaskId", "sourceRunId", "actor")
#: The most characters a context value may have (the actor is kept in a column this wide).
CONTEXT_MAX_LENGTH = 200


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
    replayed: bool = False  # the first answer to an earlier request with the same key


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
    errors |= {f"context.{k}": [f"must be at most {CONTEXT_MAX_LENGTH} characters"]
               for k, v in (context or {}).items()
               if k in CONTEXT_KEYS and isinstance(v, str) and len(v) > CONTEXT_MAX_LENGTH}
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
    request_sha256: str = "",
) -> EmitResult:
    """Validate, record and queue one milestone for every active target (or ``targets``).

    One transaction: the ``milestone_emitted`` event and one ``delivery_queued`` per target.
    The dispatchers are woken when it commits, and after commit the JSONL log catches up
    (``milestone_log``), never raising: the emit has happened whatever the file does. A
    given ``idempotency_key`` that was used before raises ``ConcurrencyError`` (nothing
    written). ``request_sha256`` fingerprints the request that asked for the emit, so a
    retry can be told from a different request reusing its key.
    """
    clean = milestone_validate(event=event)
    if targets is None:
        target_default_ensure()
        targets = targets_active()
    prepared = emit_append(event=clean, context=context, actor=actor, sent_at=sent_at,
                           idempotency_key=idempotency_key, targets=targets,
                           now=timezone.now(), request_sha256=request_sha256)
    append = prepared.append
    projections.record(append.stream_id, append.events, expected_version=Expect.NO_STREAM)
    outbox_wake()
    transaction.on_commit(metrics.EMITTED.inc, robust=True)  # never a 500 after commit
    transaction.on_commit(milestone_log_catch_up_safely)
    return prepared.result


@dataclass(frozen=True)
class PreparedEmit:
    append: Append  # the emit's events, expecting NO_STREAM
    result: EmitResult


def emit_append(
    *, event: dict[str, Any], context: Mapping[str, Any] | None, actor: str,
    sent_at: datetime | None, idempotency_key: str | None, targets: Sequence[Target],
    now: datetime, request_sha256: str = "",
) -> PreparedEmit:
    """The events of emitting ``event`` (already ``milestone_validate``d) to ``targets``,
    for ``milestone_emit`` or a caller that records many emits at once (backfill)."""
    ctx = _context(context)
    key = idempotency_key or secrets.token_hex(16)
    sent_at_utc = js_iso_timestamp(sent_at or now)
    due = js_iso_timestamp(now)
    queued = tuple(
        QueuedDelivery(str(uuid.uuid4()), t.name, Status.PENDING, due)
        for t in targets
    )
    # Serialised once, here: every attempt to every target sends (and signs) these bytes.
    envelope = envelope_bytes({"idempotencyKey": key, "sentAtUtc": sent_at_utc, "event": event})
    fingerprint = {"requestSha256": request_sha256} if request_sha256 else {}
    new_events = [ev.event(ev.MILESTONE_EMITTED, actor, idempotencyKey=key, sentAtUtc=sent_at_utc,
                           event=event, envelope=envelope.decode("utf-8"), context=ctx,
                           actor=actor, **fingerprint)]
    new_events += [
        ev.event(ev.DELIVERY_QUEUED, actor, deliveryId=q.delivery_id, idempotencyKey=key,
                 milestoneId=event["milestoneId"], target=q.target, nextAttemptAtUtc=due)
        for q in queued
    ]
    return PreparedEmit(Append(ev.milestone_stream(key), new_events, Expect.NO_STREAM),
                        EmitResult(key, event["milestoneId"], sent_at_utc, event, queued))


def request_fingerprint(body: Any) -> str:
    """SHA-256 of a parsed request body's canonical form: equal for equal JSON content,
    whatever its key order or whitespace."""
    try:
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()
    except JsonInvalid as exc:
        raise MilestoneRejected("invalid request", errors={"event": [str(exc)]}) from None


def milestone_emit_once(
    *,
    idempotency_key: str,
    request_sha256: str,
    event: Any,
    context: Mapping[str, Any] | None = None,
    actor: str = "",
) -> EmitResult:
    """``milestone_emit`` under a caller's key (the ``Idempotency-Key`` header, SPEC §7).

    The key becomes the envelope's idempotencyKey, so the stream ``outbox-<key>`` exists at
    most once: the event store's unique (stream, version) decides, never a prior read.
    When the stream exists, the request is a retry if it carries the same fingerprint, and
    the first answer is rebuilt from the stream's events (``replayed``); otherwise it
    raises ``IdempotencyKeyReused`` (409).
    """
    try:
        return milestone_emit(event=event, context=context, actor=actor,
                              idempotency_key=idempotency_key, request_sha256=request_sha256)
    except ConcurrencyError:
        pass
    emitted, *queued = _first_answer_events(idempotency_key)
    if emitted.type != ev.MILESTONE_EMITTED or emitted.data.get("requestSha256") != request_sha256:
        raise IdempotencyKeyReused(
            "Idempotency-Key was already used for a different request",
            errors={"Idempotency-Key": ["Already used with another body; use a new key."]})
    return EmitResult(
        idempotency_key, emitted.data["event"]["milestoneId"], emitted.data["sentAtUtc"],
        emitted.data["event"],
        tuple(QueuedDelivery(q.data["deliveryId"], q.data["target"], Status.PENDING,
                             q.data["nextAttemptAtUtc"]) for q in queued),
        replayed=True)


def _first_answer_events(idempotency_key: str) -> list[RecordedEvent]:
    """The emit's own events: ``milestone_emitted`` and the deliveries queued with it.

    They share one transaction, hence one ``recorded_at``; deliveries queued later (a
    replay to a new target) were not part of the first answer.
    """
    stream = store.read_stream(ev.milestone_stream(idempotency_key))
    emitted = stream[0]
    return [emitted] + [e for e in stream[1:] if e.type == ev.DELIVERY_QUEUED
                        and e.recorded_at == emitted.recorded_at]
