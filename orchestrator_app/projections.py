"""The outbox projections: milestones, deliveries and attempts, and target pauses, as
functions of events.

Every ``outbox.*`` event of one milestone lives in the stream ``outbox-<idempotencyKey>``,
a target's pauses and resumes in ``outbox-target-<name>`` (see ``events.py``). Timestamps
come from event data or ``recorded_at``, never the clock, so ``rebuild_projections``
reproduces the tables exactly.

``OutboxProjection.apply`` writes a batch in a few statements. New milestones and
deliveries are inserted by PostgreSQL straight from their events' rows (``INSERT …
SELECT … FROM eventstore_event WHERE position = ANY(…)``: nothing is rebuilt or
re-serialised in Python, which is what a backfill of 100,000 lines spends its time on
otherwise); then the delivery rows the other events touch are read once, each event
changes its row in memory (``_fold``), and changed rows and attempts are written in bulk.
The worker records a whole batch of attempts this way, and a rebuild replays 5000 events
at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from clawdbot.contract import envelope_bytes
from clawdbot.eventstore.projections import Projection
from clawdbot.eventstore.store import RecordedEvent
from orchestrator_app import events as ev
from orchestrator_app.models import (
    Delivery,
    DeliveryAttempt,
    EmittedMilestone,
    Status,
    TargetPause,
)

MUTABLE = ["status", "attempts", "cycle_attempts", "last_status_code", "last_error",
           "last_attempt_at", "next_attempt_at", "note", "updated_at", "position"]
_TYPES = ["text", "int", "int", "int", "text", "timestamptz", "timestamptz", "text",
          "timestamptz", "bigint"]
# One statement for a whole batch of changed rows (Django's bulk_update builds a CASE per
# row and field, which costs more than the rest of recording an attempt).
_UPDATE = (
    "UPDATE orchestrator_delivery d SET "
    + ", ".join(f"{f} = v.{f}" for f in MUTABLE)
    + " FROM unnest(%s::uuid[], "
    + ", ".join(f"%s::{t}[]" for t in _TYPES)
    + ") AS v(id, " + ", ".join(MUTABLE) + ") WHERE d.id = v.id"
)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _at(text: str) -> datetime:
    """A timestamp the event always carries (a missing one is a malformed event)."""
    return datetime.fromisoformat(text)


def _fold(row: Delivery, e: RecordedEvent) -> None:
    """How one event after ``delivery_queued`` changes its delivery's row."""
    d = e.data
    match e.type:
        case ev.DELIVERY_ATTEMPTED:
            row.attempts += 1
            row.cycle_attempts += 1
            row.last_status_code = d.get("statusCode")
            row.last_error = d.get("error") or ""
            row.last_attempt_at = _when(d["attemptedAtUtc"])
        case ev.DELIVERY_RETRY_SCHEDULED:
            row.status, row.next_attempt_at = Status.RETRYING, _when(d["nextAttemptAtUtc"])
        case ev.DELIVERY_SUCCEEDED:
            row.status, row.next_attempt_at = d["status"], None
        case ev.DELIVERY_REJECTED:
            row.status, row.next_attempt_at = Status.REJECTED, None
        case ev.DELIVERY_DEAD_LETTERED:
            row.status, row.next_attempt_at = Status.DEAD_LETTER, None
        case ev.DELIVERY_REQUEUED:
            row.status, row.cycle_attempts = Status.PENDING, 0
            row.next_attempt_at = _when(d["nextAttemptAtUtc"])
            row.note = f"requeued by {d.get('actor') or '?'}: {d.get('reason') or ''}"
        case ev.DELIVERY_DISCARDED:
            row.status, row.next_attempt_at = Status.DISCARDED, None
            row.note = f"discarded by {d.get('actor') or '?'}: {d.get('reason') or ''}"
    row.updated_at, row.position = e.recorded_at, e.position


def envelope_text(data: dict[str, Any]) -> str:
    """The envelope a ``milestone_emitted`` event fixed; events recorded before it carried
    one get the bytes every attempt built then (the same function of the same data)."""
    if "envelope" in data:
        return data["envelope"]
    envelope = {"idempotencyKey": data["idempotencyKey"], "sentAtUtc": data["sentAtUtc"],
                "event": data["event"]}
    return envelope_bytes(envelope).decode("utf-8")


def _milestone(e: RecordedEvent) -> EmittedMilestone:
    d = e.data
    return EmittedMilestone(
        idempotency_key=d["idempotencyKey"], milestone_id=d["event"]["milestoneId"],
        sent_at_utc=d["sentAtUtc"], sent_at=_at(d["sentAtUtc"]), event=d["event"],
        envelope=envelope_text(d), context=d.get("context") or {}, actor=d.get("actor") or "",
        position=e.position)


STARTED, INTERRUPTED = "started", "interrupted"
INTERRUPTED_ERROR = "no outcome recorded: the worker stopped (or lost its lease) mid-attempt"


def _started(e: RecordedEvent, target: str) -> DeliveryAttempt:
    """An attempt under way, until its outcome replaces it (or a later start marks it
    interrupted: the worker died, or lost its lease, before recording an outcome)."""
    d = e.data
    return DeliveryAttempt(
        position=e.position, delivery_id=d["deliveryId"], number=d["number"],
        attempted_at=e.recorded_at, duration_ms=0.0, outcome=STARTED,
        worker=d.get("worker") or "", target=target)


def _attempt(e: RecordedEvent, target: str) -> DeliveryAttempt:
    d = e.data
    return DeliveryAttempt(
        position=e.position, delivery_id=d["deliveryId"], number=d["number"],
        attempted_at=_at(d["attemptedAtUtc"]), duration_ms=d["durationMs"],
        status_code=d.get("statusCode"), response_excerpt=d.get("responseExcerpt") or "",
        error=d.get("error") or "", outcome=d["outcome"], worker=d.get("worker") or "",
        target=target, request_headers=d.get("requestHeaders") or {},
        response_headers=d.get("responseHeaders") or {})


# The rows of ``_milestone`` and ``_queued``, computed by PostgreSQL from the stored events
# (the same fields, the same defaults). Only events that carry their envelope: older ones
# get it rebuilt by ``envelope_text`` in Python.
_INSERT_MILESTONES = """
INSERT INTO orchestrator_milestone (idempotency_key, milestone_id, sent_at_utc, sent_at, event,
                                    envelope, context, actor, position)
SELECT e.data->>'idempotencyKey', e.data->'event'->>'milestoneId', e.data->>'sentAtUtc',
       (e.data->>'sentAtUtc')::timestamptz, e.data->'event', e.data->>'envelope',
       CASE WHEN jsonb_typeof(e.data->'context') = 'object' THEN e.data->'context'
            ELSE '{}'::jsonb END,
       coalesce(e.data->>'actor', ''), e.position
FROM eventstore_event e WHERE e.position = ANY(%s::bigint[]) ORDER BY e.position
"""
_INSERT_DELIVERIES = """
INSERT INTO orchestrator_delivery (id, idempotency_key, milestone_id, target, status, attempts,
    cycle_attempts, last_status_code, last_error, last_attempt_at, next_attempt_at, note,
    created_at, updated_at, position, lease_owner, lease_expires_at)
SELECT (e.data->>'deliveryId')::uuid, e.data->>'idempotencyKey', e.data->>'milestoneId',
       e.data->>'target', 'pending', 0, 0, NULL, '', NULL,
       nullif(e.data->>'nextAttemptAtUtc', '')::timestamptz, '', e.recorded_at,
       e.recorded_at, e.position, '', NULL
FROM eventstore_event e WHERE e.position = ANY(%s::bigint[]) ORDER BY e.position
"""


def _insert_new(emitted: list[RecordedEvent], queued: list[RecordedEvent]) -> None:
    with_envelope = [e.position for e in emitted if "envelope" in e.data]
    with connection.cursor() as cursor:
        if with_envelope:
            cursor.execute(_INSERT_MILESTONES, [with_envelope])
        if queued:
            cursor.execute(_INSERT_DELIVERIES, [[e.position for e in queued]])
    EmittedMilestone.objects.bulk_create([_milestone(e) for e in emitted
                                          if "envelope" not in e.data])


def _update(rows: list[Delivery]) -> None:
    if not rows:
        return
    columns = [[str(r.pk) for r in rows]] + [[getattr(r, f) for r in rows] for f in MUTABLE]
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE, columns)


class OutboxProjection(Projection):
    name = "outbox"
    models = (EmittedMilestone, Delivery, DeliveryAttempt)
    types = frozenset(ev.PROJECTED_TYPES)

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        _insert_new([e for e in events if e.type == ev.MILESTONE_EMITTED],
                    [e for e in events if e.type == ev.DELIVERY_QUEUED])
        touched = {e.data["deliveryId"] for e in events if e.type not in (
            ev.MILESTONE_EMITTED, ev.DELIVERY_QUEUED, ev.DELIVERY_ATTEMPT_STARTED)}
        # Read after the inserts: a delivery queued in this batch may change in it too.
        existing = ({str(k): row for k, row in Delivery.objects.in_bulk(list(touched)).items()}
                    if touched else {})
        attempts, changed = [], set()
        starts = _Starts(events, existing)
        for e in events:
            if e.type in (ev.MILESTONE_EMITTED, ev.DELIVERY_QUEUED):
                continue
            if e.type == ev.DELIVERY_ATTEMPT_STARTED:
                starts.start(e)
                continue
            key = e.data["deliveryId"]
            _fold(existing[key], e)
            changed.add(key)
            if e.type == ev.DELIVERY_ATTEMPTED:
                starts.finish(e)
                attempts.append(_attempt(e, existing[key].target))
        _update([existing[k] for k in changed])
        starts.write()
        DeliveryAttempt.objects.bulk_create(attempts)


class _Starts:
    """The attempt-started rows of one batch: each is replaced by its attempt's outcome
    (``startedPosition``), and marked interrupted when its delivery starts again first."""

    def __init__(self, events: Sequence[RecordedEvent], known: dict[str, Delivery]) -> None:
        self.new: dict[int, DeliveryAttempt] = {}
        self.finished: set[int] = set()
        self.interrupted: set[int] = set()
        again = {e.data["deliveryId"] for e in events if e.type == ev.DELIVERY_ATTEMPT_STARTED}
        # Each attempt row names its target (for the per-target health reads).
        self.targets = {k: d.target for k, d in known.items()}
        unknown = again - set(self.targets)
        if unknown:
            self.targets.update((str(k), t) for k, t in Delivery.objects.filter(
                pk__in=list(unknown)).values_list("pk", "target"))
        # Earlier starts still without an outcome, of deliveries that start again here.
        self.open: dict[str, list[int]] = {}
        if again:
            for delivery_id, position in DeliveryAttempt.objects.filter(
                    delivery_id__in=again, outcome=STARTED).values_list("delivery_id", "pk"):
                self.open.setdefault(str(delivery_id), []).append(position)

    def start(self, e: RecordedEvent) -> None:
        key = e.data["deliveryId"]
        for position in self.open.pop(key, []):
            if position in self.new:
                self.new[position].outcome = INTERRUPTED
                self.new[position].error = INTERRUPTED_ERROR
            else:
                self.interrupted.add(position)
        self.new[e.position] = _started(e, self.targets.get(key, ""))
        self.open[key] = [e.position]

    def finish(self, e: RecordedEvent) -> None:
        position = e.data.get("startedPosition")
        if position is None:
            return
        if self.new.pop(position, None) is None:
            self.finished.add(position)
        self.interrupted.discard(position)
        opened = self.open.get(e.data["deliveryId"], [])
        if position in opened:
            opened.remove(position)

    def write(self) -> None:
        if self.finished:
            DeliveryAttempt.objects.filter(pk__in=self.finished).delete()
        if self.interrupted:
            DeliveryAttempt.objects.filter(pk__in=self.interrupted, outcome=STARTED).update(
                outcome=INTERRUPTED, error=INTERRUPTED_ERROR)
        DeliveryAttempt.objects.bulk_create(self.new.values())


class TargetPauseProjection(Projection):
    """``target_paused`` makes (or replaces) a target's ``TargetPause``; ``target_resumed``
    removes it. A batch keeps each target's last event: one DELETE, one INSERT."""

    name = "outbox_target_pause"
    models = (TargetPause,)
    types = frozenset({ev.TARGET_PAUSED, ev.TARGET_RESUMED})

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        last: dict[str, TargetPause | None] = {}
        for e in events:
            d = e.data
            last[d["target"]] = TargetPause(
                target_id=d["target"], paused_at=e.recorded_at, reason=d.get("reason") or "",
                actor=d.get("actor") or "", position=e.position,
            ) if e.type == ev.TARGET_PAUSED else None
        TargetPause.objects.filter(target_id__in=list(last)).delete()
        TargetPause.objects.bulk_create([p for p in last.values() if p is not None])
