"""Replay stored milestones to targets, and backfill from the reference's JSONL log."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from clawdbot.contract import js_iso_timestamp, parse_timestamp
from clawdbot.contract.schema import NOT_OBJECT, NOT_STRING
from clawdbot.contract.storable import join_path
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import ConcurrencyError, Expect
from orchestrator_app import events as ev
from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.models import OPEN_STATUSES, Delivery, EmittedMilestone, Target
from orchestrator_app.services.emit import milestone_emit, milestone_validate
from orchestrator_app.wake import outbox_wake


@dataclass(frozen=True)
class ReplayOutcome:
    requeued: int  # existing deliveries sent again
    queued: int  # targets that had no delivery of this milestone yet
    skipped: int  # deliveries still open: they go anyway


@transaction.atomic(durable=True)
def milestone_replay(
    *, idempotency_key: str, targets: list[Target], actor: str, reason: str,
    dry_run: bool = False,
) -> ReplayOutcome:
    """Send a stored milestone again, with its original idempotencyKey, to ``targets``.

    A target that already has a closed delivery gets it requeued (a receiver that has it
    answers ``duplicate``); one that never had it (added later) gets a new delivery.
    ``dry_run`` answers what would happen and records nothing.
    """
    milestone = EmittedMilestone.objects.get(pk=idempotency_key)
    existing = {d.target: d for d in Delivery.objects.select_for_update().filter(
        idempotency_key=idempotency_key, target__in=[t.name for t in targets])}
    due = js_iso_timestamp(timezone.now())
    new_events, requeued, queued, skipped = [], 0, 0, 0
    for target in targets:
        delivery = existing.get(target.name)
        if delivery is None:
            queued += 1
            new_events.append(ev.event(
                ev.DELIVERY_QUEUED, actor, deliveryId=str(uuid.uuid4()),
                idempotencyKey=idempotency_key, milestoneId=milestone.milestone_id,
                target=target.name, nextAttemptAtUtc=due))
        elif delivery.status in OPEN_STATUSES:
            skipped += 1
        else:
            requeued += 1
            new_events.append(ev.event(ev.DELIVERY_REQUEUED, actor, deliveryId=str(delivery.pk),
                                       actor=actor, reason=reason, nextAttemptAtUtc=due))
    if new_events and not dry_run:
        projections.record(ev.milestone_stream(idempotency_key), new_events,
                     expected_version=Expect.ANY)
        outbox_wake()
    return ReplayOutcome(requeued, queued, skipped)


def backfill_key(milestone_id: str) -> str:
    """A 128-bit hex key derived from the milestoneId, so a backfill is idempotent by
    constraint: a second import of the same milestone hits the existing stream."""
    return hashlib.sha256(f"backfill:{milestone_id}".encode()).hexdigest()[:32]


def is_log_line(line: Any) -> bool:
    """Whether ``line`` is the reference's log line ``{"sentAtUtc", "event"}`` rather than
    a plain milestone event (which has a ``milestoneId`` and no ``event``)."""
    return isinstance(line, dict) and "event" in line and "milestoneId" not in line


def milestone_backfill(*, line: Any, actor: str) -> bool:
    """Emit one line of a log unless a milestone with its milestoneId was ever emitted;
    return whether it was emitted.

    A line is the reference's ``{"sentAtUtc", "event"}`` or a plain milestone event. The
    field paths of a MilestoneRejected are those of the line (``event.claim`` in a log line).
    """
    if not isinstance(line, dict):
        raise MilestoneRejected("invalid line", errors={"": [NOT_OBJECT]})
    log_line = is_log_line(line)
    event = line["event"] if log_line else line
    if not isinstance(event, dict):
        raise MilestoneRejected("invalid line", errors={"event": [NOT_OBJECT]})
    milestone_id = event.get("milestoneId")
    if isinstance(milestone_id, str) and EmittedMilestone.objects.filter(
            milestone_id=milestone_id).exists():
        return False
    sent_at = None
    if log_line and "sentAtUtc" in line:
        try:
            if not isinstance(line["sentAtUtc"], str):
                raise ValueError(NOT_STRING)
            sent_at = parse_timestamp(line["sentAtUtc"])
        except ValueError as exc:
            raise MilestoneRejected("invalid line", errors={"sentAtUtc": [str(exc)]}) from None
    try:
        milestone = milestone_validate(event=event)
    except MilestoneRejected as exc:
        if log_line:
            exc.errors = {join_path("event", k): v for k, v in (exc.errors or {}).items()}
        raise
    try:
        milestone_emit(event=milestone, actor=actor, sent_at=sent_at,
                       idempotency_key=backfill_key(str(milestone_id)),
                       context={"sourceRunId": "backfill"})
    except ConcurrencyError:
        return False
    return True
