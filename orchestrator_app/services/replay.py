"""Replay stored milestones to targets, and backfill from the reference's JSONL log."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from clawdbot.contract import js_iso_timestamp, parse_timestamp
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import ConcurrencyError, Expect
from orchestrator_app import events as ev
from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.models import OPEN_STATUSES, Delivery, EmittedMilestone, Target
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.wake import outbox_wake


@dataclass(frozen=True)
class ReplayOutcome:
    requeued: int  # existing deliveries sent again
    queued: int  # targets that had no delivery of this milestone yet
    skipped: int  # deliveries still open: they go anyway


@transaction.atomic(durable=True)
def milestone_replay(
    *, idempotency_key: str, targets: list[Target], actor: str, reason: str
) -> ReplayOutcome:
    """Send a stored milestone again, with its original idempotencyKey, to ``targets``.

    A target that already has a closed delivery gets it requeued (a receiver that has it
    answers ``duplicate``); one that never had it (added later) gets a new delivery.
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
    if new_events:
        projections.record(ev.milestone_stream(idempotency_key), new_events,
                     expected_version=Expect.ANY)
        outbox_wake()
    return ReplayOutcome(requeued, queued, skipped)


def backfill_key(milestone_id: str) -> str:
    """A 128-bit hex key derived from the milestoneId, so a backfill is idempotent by
    constraint: a second import of the same milestone hits the existing stream."""
    return hashlib.sha256(f"backfill:{milestone_id}".encode()).hexdigest()[:32]


def milestone_backfill(*, line: Any, actor: str) -> bool:
    """Emit one line of the reference's log (``{"sentAtUtc", "event"}``) unless a milestone
    with its milestoneId was ever emitted; return whether it was emitted."""
    if not isinstance(line, dict) or not isinstance(line.get("event"), dict):
        raise MilestoneRejected("not a log line", errors={"event": ["required object"]})
    milestone_id = line["event"].get("milestoneId")
    if isinstance(milestone_id, str) and EmittedMilestone.objects.filter(
            milestone_id=milestone_id).exists():
        return False
    sent_at = None
    if isinstance(line.get("sentAtUtc"), str):
        try:
            sent_at = parse_timestamp(line["sentAtUtc"])
        except ValueError:
            raise MilestoneRejected("bad sentAtUtc", errors={"sentAtUtc": ["not a date-time"]}) \
                from None
    try:
        milestone_emit(event=line["event"], actor=actor, sent_at=sent_at,
                       idempotency_key=backfill_key(str(milestone_id)),
                       context={"sourceRunId": "backfill"})
    except ConcurrencyError:
        return False
    return True
