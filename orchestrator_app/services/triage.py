"""Operator actions: requeue and discard deliveries, pause and resume targets.

Each one is an event naming who did it and why; reasons are required.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from clawdbot.contract import js_iso_timestamp
from clawdbot.eventstore import store
from clawdbot.eventstore.store import Expect
from orchestrator_app import events as ev
from orchestrator_app.exceptions import DeliveryNotFound, DeliveryNotTriageable, UnknownTarget
from orchestrator_app.models import OPEN_STATUSES, UNDELIVERABLE_STATUSES, Delivery, Target
from orchestrator_app.wake import outbox_wake


def _locked(delivery_id: str) -> Delivery:
    try:
        return Delivery.objects.select_for_update().get(pk=delivery_id)
    except (Delivery.DoesNotExist, ValueError):
        raise DeliveryNotFound(f"no delivery {delivery_id}") from None


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise DeliveryNotTriageable("a reason is required", errors={"reason": ["required"]})
    return reason


@transaction.atomic(durable=True)
def delivery_requeue(
    *, delivery_id: str, actor: str, reason: str,
    from_statuses: Iterable[str] = UNDELIVERABLE_STATUSES,
) -> Delivery:
    """Put a delivery back to ``pending``, due now, with a fresh set of attempts."""
    delivery = _locked(delivery_id)
    if delivery.status not in set(from_statuses):
        raise DeliveryNotTriageable(f"delivery {delivery_id} is {delivery.status}; not requeued")
    due = js_iso_timestamp(timezone.now())
    store.append(ev.milestone_stream(delivery.idempotency_key), [
        ev.event(ev.DELIVERY_REQUEUED, actor, deliveryId=str(delivery.pk), actor=actor,
                 reason=_reason(reason), nextAttemptAtUtc=due),
    ], expected_version=Expect.ANY)
    outbox_wake()
    delivery.refresh_from_db()
    return delivery


@transaction.atomic(durable=True)
def delivery_discard(*, delivery_id: str, actor: str, reason: str) -> Delivery:
    """Give up on a delivery for good (it is undeliverable or no longer wanted)."""
    delivery = _locked(delivery_id)
    if delivery.status not in (*UNDELIVERABLE_STATUSES, *OPEN_STATUSES):
        raise DeliveryNotTriageable(f"delivery {delivery_id} is {delivery.status}; not discarded")
    store.append(ev.milestone_stream(delivery.idempotency_key), [
        ev.event(ev.DELIVERY_DISCARDED, actor, deliveryId=str(delivery.pk), actor=actor,
                 reason=_reason(reason)),
    ], expected_version=Expect.ANY)
    delivery.refresh_from_db()
    return delivery


def target_pause_inner(*, target: Target, actor: str, reason: str) -> Target:
    """Hold every delivery to ``target`` (inside the caller's transaction)."""
    store.append(ev.target_stream(target.name), [
        ev.event(ev.TARGET_PAUSED, actor, target=target.name, actor=actor, reason=reason),
    ], expected_version=Expect.ANY)
    Target.objects.filter(pk=target.pk).update(paused_at=timezone.now(), paused_reason=reason)
    target.refresh_from_db()
    return target


def _target(name: str) -> Target:
    try:
        return Target.objects.select_for_update().get(name=name)
    except Target.DoesNotExist:
        raise UnknownTarget(f"no target named {name!r}") from None


@transaction.atomic(durable=True)
def target_pause(*, name: str, actor: str, reason: str) -> Target:
    return target_pause_inner(target=_target(name), actor=actor, reason=_reason(reason))


@transaction.atomic(durable=True)
def target_resume(*, name: str, actor: str, reason: str) -> Target:
    """Let held deliveries go again; they are attempted as soon as they are due."""
    target = _target(name)
    store.append(ev.target_stream(target.name), [
        ev.event(ev.TARGET_RESUMED, actor, target=target.name, actor=actor,
                 reason=_reason(reason)),
    ], expected_version=Expect.ANY)
    Target.objects.filter(pk=target.pk).update(paused_at=None, paused_reason="")
    outbox_wake()
    target.refresh_from_db()
    return target
