"""The outbox projection: milestones, deliveries and attempts as pure functions of events.

Every ``outbox.*`` event of one milestone lives in the stream ``outbox-<idempotencyKey>``
(see ``events.py``). Timestamps come from event data or ``recorded_at``, never the clock,
so ``rebuild_projections`` reproduces the tables exactly.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from clawdbot.eventstore.projections import Projection
from clawdbot.eventstore.store import RecordedEvent
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, DeliveryAttempt, EmittedMilestone, Status


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class OutboxProjection(Projection):
    name = "outbox"
    models = (EmittedMilestone, Delivery, DeliveryAttempt)

    def handled_types(self) -> list[str]:
        return list(ev.PROJECTED_TYPES)

    def apply_outbox_milestone_emitted(self, e: RecordedEvent) -> None:
        d = e.data
        EmittedMilestone.objects.create(
            idempotency_key=d["idempotencyKey"], milestone_id=d["event"]["milestoneId"],
            sent_at_utc=d["sentAtUtc"], sent_at=_when(d["sentAtUtc"]), event=d["event"],
            context=d.get("context") or {}, actor=d.get("actor") or "", position=e.position,
        )

    def apply_outbox_delivery_queued(self, e: RecordedEvent) -> None:
        d = e.data
        Delivery.objects.create(
            id=d["deliveryId"], idempotency_key=d["idempotencyKey"],
            milestone_id=d["milestoneId"], target=d["target"], status=Status.PENDING,
            next_attempt_at=_when(d["nextAttemptAtUtc"]), created_at=e.recorded_at,
            updated_at=e.recorded_at, position=e.position,
        )

    def apply_outbox_delivery_attempted(self, e: RecordedEvent) -> None:
        d = e.data
        DeliveryAttempt.objects.create(
            position=e.position, delivery_id=d["deliveryId"], number=d["number"],
            attempted_at=_when(d["attemptedAtUtc"]), duration_ms=d["durationMs"],
            status_code=d.get("statusCode"), response_excerpt=d.get("responseExcerpt") or "",
            error=d.get("error") or "", outcome=d["outcome"], worker=d.get("worker") or "",
        )
        self._update(e, attempts=F("attempts") + 1, cycle_attempts=F("cycle_attempts") + 1,
                     last_status_code=d.get("statusCode"), last_error=d.get("error") or "",
                     last_attempt_at=_when(d["attemptedAtUtc"]))

    def apply_outbox_delivery_retry_scheduled(self, e: RecordedEvent) -> None:
        self._update(e, status=Status.RETRYING, next_attempt_at=_when(e.data["nextAttemptAtUtc"]))

    def apply_outbox_delivery_succeeded(self, e: RecordedEvent) -> None:
        self._update(e, status=e.data["status"], next_attempt_at=None)

    def apply_outbox_delivery_rejected(self, e: RecordedEvent) -> None:
        self._update(e, status=Status.REJECTED, next_attempt_at=None)

    def apply_outbox_delivery_dead_lettered(self, e: RecordedEvent) -> None:
        self._update(e, status=Status.DEAD_LETTER, next_attempt_at=None)

    def apply_outbox_delivery_requeued(self, e: RecordedEvent) -> None:
        d = e.data
        self._update(e, status=Status.PENDING, cycle_attempts=0,
                     next_attempt_at=_when(d["nextAttemptAtUtc"]),
                     note=f"requeued by {d.get('actor') or '?'}: {d.get('reason') or ''}")

    def apply_outbox_delivery_discarded(self, e: RecordedEvent) -> None:
        d = e.data
        self._update(e, status=Status.DISCARDED, next_attempt_at=None,
                     note=f"discarded by {d.get('actor') or '?'}: {d.get('reason') or ''}")

    def _update(self, e: RecordedEvent, **fields: object) -> None:
        Delivery.objects.filter(pk=e.data["deliveryId"]).update(
            updated_at=e.recorded_at, position=e.position, **fields
        )
