"""Reads of the outbox tables."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from orchestrator_app.events import milestone_stream
from orchestrator_app.exceptions import InvalidCursor
from orchestrator_app.models import (
    UNDELIVERABLE_STATUSES,
    Delivery,
    DeliveryAttempt,
    EmittedMilestone,
    Target,
)


@dataclass(frozen=True)
class DeliveryPage:
    items: tuple[Delivery, ...]
    next_cursor: str | None


def _encode(delivery: Delivery) -> str:
    raw = f"{delivery.created_at.isoformat()}|{delivery.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, pk = raw.split("|", 1)
        return datetime.fromisoformat(created), str(uuid.UUID(pk))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise InvalidCursor("invalid request", errors={"cursor": ["invalid cursor"]}) from None


def delivery_page(
    *, status: Sequence[str] = (), target: str = "", milestone_id: str = "",
    cursor: str = "", limit: int = 50,
) -> DeliveryPage:
    """Deliveries newest first, filtered; ``cursor`` continues after a previous page.

    Raises ``InvalidCursor`` for a cursor this function did not make.
    """
    qs = Delivery.objects.order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status__in=list(status))
    if target:
        qs = qs.filter(target=target)
    if milestone_id:
        qs = qs.filter(milestone_id=milestone_id)
    if cursor:
        created, pk = _decode(cursor)
        qs = qs.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=pk))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(tuple(rows), _encode(rows[-1]) if more and rows else None)


def targets_active() -> list[Target]:
    """The targets that get a delivery of each new milestone."""
    return list(Target.objects.filter(is_active=True))


def dead_letters(*, target: str = "") -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(status__in=UNDELIVERABLE_STATUSES).order_by("created_at")
    return qs.filter(target=target) if target else qs


def milestone_ever_emitted() -> bool:
    return EmittedMilestone.objects.exists()


def milestones_between(
    *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[EmittedMilestone]:
    qs = EmittedMilestone.objects.order_by("position")
    if since:
        qs = qs.filter(sent_at__gte=since)
    if until:
        qs = qs.filter(sent_at__lt=until)
    return qs


@dataclass(frozen=True)
class DeliveryDetail:
    """Everything the delivery page shows: the row, its attempts (oldest first), the
    milestone it carries, and the request the latest recorded attempt sent."""

    delivery: Delivery
    attempts: tuple[DeliveryAttempt, ...]
    milestone: EmittedMilestone | None
    request_headers: dict[str, str]
    stream_id: str


def delivery_detail(*, delivery: Delivery) -> DeliveryDetail:
    attempts = tuple(DeliveryAttempt.objects.filter(delivery_id=delivery.pk).order_by("position"))
    milestone = EmittedMilestone.objects.filter(pk=delivery.idempotency_key).first()
    sent: dict[str, str] = next(
        (a.request_headers for a in reversed(attempts) if a.request_headers), {})
    return DeliveryDetail(delivery, attempts, milestone, dict(sent),
                          milestone_stream(delivery.idempotency_key))
