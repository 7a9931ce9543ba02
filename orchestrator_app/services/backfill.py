"""Backfill from the reference's JSONL log, a chunk of lines per transaction.

Each line is checked as ``milestone_backfill`` checks one; the valid lines of a chunk are
emitted together: one ``record_each`` (one ``append_batch`` for every milestone's emit and
queued deliveries, one projection pass of a few set-based statements), one wake-up of the
dispatchers, one catch-up of the emitter's JSONL log. Idempotent by milestoneId as one
line at a time is: a milestone emitted before (or earlier in the file) is skipped, and the
key derived from it (``backfill_key``) makes a concurrent second import of the same line
meet the stream's ``NO_STREAM`` constraint and skip it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from clawdbot.eventstore import projections
from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.models import EmittedMilestone
from orchestrator_app.selectors import targets_active
from orchestrator_app.services.emit import emit_append, target_default_ensure
from orchestrator_app.services.milestone_log import milestone_log_catch_up_safely
from orchestrator_app.services.replay import (
    backfill_key,
    backfill_line_check,
    backfill_line_event,
)
from orchestrator_app.wake import outbox_wake

#: Lines per transaction: big enough that per-statement costs vanish, small enough that
#: the append lock is never held for long (other emits and ingests wait on it).
CHUNK_LINES = 2000


@dataclass
class BackfillChunk:
    emitted: int = 0
    skipped: int = 0
    invalid: list[tuple[int, MilestoneRejected]] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.emitted + self.skipped + len(self.invalid)


@transaction.atomic(durable=True)
def milestones_backfill(*, lines: Sequence[tuple[int, Any]], actor: str) -> BackfillChunk:
    """Emit the valid lines of ``lines`` (``(line number, parsed JSON)``) that were never
    emitted, in one transaction; the invalid ones come back with their MilestoneRejected.
    """
    outcome = BackfillChunk()
    events: list[tuple[int, Any, dict[str, Any]]] = []
    for number, line in lines:
        try:
            events.append((number, line, backfill_line_event(line)))
        except MilestoneRejected as exc:
            outcome.invalid.append((number, exc))
    ids = [i for _, _, e in events if isinstance(i := e.get("milestoneId"), str)]
    seen = set(EmittedMilestone.objects.filter(milestone_id__in=ids).values_list(
        "milestone_id", flat=True))
    target_default_ensure()
    targets = targets_active()
    now = timezone.now()
    appends = []
    for number, line, event in events:
        if event.get("milestoneId") in seen:  # emitted before, or earlier in the file
            outcome.skipped += 1
            continue
        try:
            checked = backfill_line_check(line)
        except MilestoneRejected as exc:
            outcome.invalid.append((number, exc))
            continue
        milestone_id = checked.event["milestoneId"]
        seen.add(milestone_id)
        appends.append(emit_append(
            event=checked.event, context={"sourceRunId": "backfill"}, actor=actor,
            sent_at=checked.sent_at, idempotency_key=backfill_key(milestone_id),
            targets=targets, now=now).append)
    results = projections.record_each(appends)
    conflicts = sum(1 for r in results if r.conflict is not None)
    outcome.emitted = len(appends) - conflicts
    outcome.skipped += conflicts
    if outcome.emitted:
        outbox_wake()
        transaction.on_commit(milestone_log_catch_up_safely)
    return outcome
