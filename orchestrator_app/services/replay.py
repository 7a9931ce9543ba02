"""Replay stored milestones to targets, and backfill from the reference's JSONL log."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from clawdbot.contract import js_iso_timestamp, parse_timestamp
from clawdbot.contract.schema import NOT_OBJECT, NOT_STRING
from clawdbot.contract.storable import join_path
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import Append, ConcurrencyError, Expect
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


def milestone_replay(
    *, idempotency_key: str, targets: list[Target], actor: str, reason: str,
    dry_run: bool = False,
) -> ReplayOutcome:
    """Send a stored milestone again, with its original idempotencyKey, to ``targets``.

    A target that already has a closed delivery gets it requeued (a receiver that has it
    answers ``duplicate``); one that never had it (added later) gets a new delivery.
    ``dry_run`` answers what would happen and records nothing.
    """
    return milestones_replay(idempotency_keys=[idempotency_key], targets=targets, actor=actor,
                             reason=reason, dry_run=dry_run)[0]


@transaction.atomic(durable=True)
def milestones_replay(
    *, idempotency_keys: Sequence[str], targets: list[Target], actor: str, reason: str,
    dry_run: bool = False,
) -> list[ReplayOutcome]:
    """``milestone_replay`` of many milestones in one transaction (one ``record_each``, one
    wake-up): ``replay_milestones`` goes a chunk at a time, and the deliveries it requeues
    are due together, so a target that takes batches gets them in batches."""
    milestones = EmittedMilestone.objects.in_bulk(list(idempotency_keys))
    missing = [k for k in idempotency_keys if k not in milestones]
    if missing:
        raise EmittedMilestone.DoesNotExist(f"no emitted milestone with key {missing[0]!r}")
    existing: dict[tuple[str, str], Delivery] = {
        (d.idempotency_key, d.target): d for d in Delivery.objects.select_for_update().filter(
            idempotency_key__in=list(idempotency_keys),
            target__in=[t.name for t in targets]).order_by("pk")}
    due = js_iso_timestamp(timezone.now())
    appends, outcomes = [], []
    for key in idempotency_keys:
        new_events, requeued, queued, skipped = [], 0, 0, 0
        for target in targets:
            delivery = existing.get((key, target.name))
            if delivery is None:
                queued += 1
                new_events.append(ev.event(
                    ev.DELIVERY_QUEUED, actor, deliveryId=str(uuid.uuid4()),
                    idempotencyKey=key, milestoneId=milestones[key].milestone_id,
                    target=target.name, nextAttemptAtUtc=due))
            elif delivery.status in OPEN_STATUSES:
                skipped += 1
            else:
                requeued += 1
                new_events.append(ev.event(
                    ev.DELIVERY_REQUEUED, actor, deliveryId=str(delivery.pk), actor=actor,
                    reason=reason, nextAttemptAtUtc=due))
        if new_events:
            appends.append(Append(ev.milestone_stream(key), new_events, Expect.ANY))
        outcomes.append(ReplayOutcome(requeued, queued, skipped))
    if appends and not dry_run:
        projections.record_batch(appends)
        outbox_wake()
    return outcomes


def backfill_key(milestone_id: str) -> str:
    """A 128-bit hex key derived from the milestoneId, so a backfill is idempotent by
    constraint: a second import of the same milestone hits the existing stream."""
    return hashlib.sha256(f"backfill:{milestone_id}".encode()).hexdigest()[:32]


def is_log_line(line: Any) -> bool:
    """Whether ``line`` is the reference's log line ``{"sentAtUtc", "event"}`` rather than
    a plain milestone event (which has a ``milestoneId`` and no ``event``)."""
    return isinstance(line, dict) and "event" in line and "milestoneId" not in line


@dataclass(frozen=True)
class BackfillLine:
    event: dict[str, Any]  # valid, as it will be sent
    sent_at: datetime | None  # the line's sentAtUtc, if it has one


def backfill_line_event(line: Any) -> dict[str, Any]:
    """The milestone event of a line (the reference's ``{"sentAtUtc", "event"}`` or a plain
    event), unchecked; MilestoneRejected when the line or its event is not an object."""
    if not isinstance(line, dict):
        raise MilestoneRejected("invalid line", errors={"": [NOT_OBJECT]})
    event = line["event"] if is_log_line(line) else line
    if not isinstance(event, dict):
        raise MilestoneRejected("invalid line", errors={"event": [NOT_OBJECT]})
    return event


def backfill_line_check(line: Any) -> BackfillLine:
    """A line checked whole (MilestoneRejected naming the line's field paths otherwise:
    ``event.claim`` in a log line)."""
    event = backfill_line_event(line)
    log_line = is_log_line(line)
    sent_at = None
    if log_line and "sentAtUtc" in line:
        try:
            if not isinstance(line["sentAtUtc"], str):
                raise ValueError(NOT_STRING)
            sent_at = parse_timestamp(line["sentAtUtc"])
        except ValueError as exc:
            raise MilestoneRejected("invalid line", errors={"sentAtUtc": [str(exc)]}) from None
    try:
        return BackfillLine(milestone_validate(event=event), sent_at)
    except MilestoneRejected as exc:
        if log_line:
            exc.errors = {join_path("event", k): v for k, v in (exc.errors or {}).items()}
        raise


def milestone_backfill(*, line: Any, actor: str) -> bool:
    """Emit one line of a log unless a milestone with its milestoneId was ever emitted;
    return whether it was emitted (``backfill.milestones_backfill`` does a chunk at once).
    """
    milestone_id = backfill_line_event(line).get("milestoneId")
    if isinstance(milestone_id, str) and EmittedMilestone.objects.filter(
            milestone_id=milestone_id).exists():
        return False
    checked = backfill_line_check(line)
    try:
        milestone_emit(event=checked.event, actor=actor, sent_at=checked.sent_at,
                       idempotency_key=backfill_key(str(milestone_id)),
                       context={"sourceRunId": "backfill"})
    except ConcurrencyError:
        return False
    return True
