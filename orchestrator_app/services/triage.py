"""Operator actions: requeue and discard deliveries, pause and resume targets.

Each one is an event naming who did it and why; reasons are required. Each locks what it
changes, then records its event last: the append lock is held from the append to the
commit, so nothing else is done while it is held.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from clawdbot import metrics
from clawdbot.contract import js_iso_timestamp
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import Expect, NewEvent
from orchestrator_app import events as ev
from orchestrator_app.exceptions import DeliveryNotFound, DeliveryNotTriageable, UnknownTarget
from orchestrator_app.models import (
    OPEN_STATUSES,
    UNDELIVERABLE_STATUSES,
    Delivery,
    Status,
    Target,
)
from orchestrator_app.services.emit import milestone_emit
from orchestrator_app.wake import outbox_wake

log = logging.getLogger(__name__)


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


def delivery_requeue(
    *, delivery_id: str, actor: str, reason: str,
    from_statuses: Iterable[str] = UNDELIVERABLE_STATUSES,
) -> Delivery:
    """Put a delivery back to ``pending``, due now, with a fresh set of attempts."""
    with transaction.atomic(durable=True):
        delivery = _locked(delivery_id)
        if delivery.status not in set(from_statuses):
            raise DeliveryNotTriageable(
                f"delivery {delivery_id} is {delivery.status}; not requeued")
        requeued = ev.event(ev.DELIVERY_REQUEUED, actor, deliveryId=str(delivery.pk),
                            actor=actor, reason=_reason(reason),
                            nextAttemptAtUtc=js_iso_timestamp(timezone.now()))
        outbox_wake()
        projections.record(ev.milestone_stream(delivery.idempotency_key), [requeued],
                           expected_version=Expect.ANY)
    metrics.DELIVERIES.labels(delivery.target, Status.PENDING.value).inc()
    log.info("delivery %s to %s key=%s requeued by %s: %s", delivery.pk, delivery.target,
             delivery.idempotency_key, actor, requeued.data["reason"])
    return Delivery.objects.get(pk=delivery.pk)


def delivery_discard(*, delivery_id: str, actor: str, reason: str) -> Delivery:
    """Give up on a delivery for good (it is undeliverable or no longer wanted)."""
    with transaction.atomic(durable=True):
        delivery = _locked(delivery_id)
        if delivery.status not in (*UNDELIVERABLE_STATUSES, *OPEN_STATUSES):
            raise DeliveryNotTriageable(
                f"delivery {delivery_id} is {delivery.status}; not discarded")
        discarded = ev.event(ev.DELIVERY_DISCARDED, actor, deliveryId=str(delivery.pk),
                             actor=actor, reason=_reason(reason))
        projections.record(ev.milestone_stream(delivery.idempotency_key), [discarded],
                           expected_version=Expect.ANY)
    metrics.DELIVERIES.labels(delivery.target, Status.DISCARDED.value).inc()
    log.info("delivery %s to %s key=%s discarded by %s: %s", delivery.pk, delivery.target,
             delivery.idempotency_key, actor, discarded.data["reason"])
    return Delivery.objects.get(pk=delivery.pk)


def target_pause_event(*, name: str, actor: str, reason: str) -> NewEvent:
    """The event that pauses the target ``name`` once recorded (its ``TargetPause``)."""
    return ev.event(ev.TARGET_PAUSED, actor, target=name, actor=actor, reason=reason)


def _target(name: str) -> Target:
    try:
        return Target.objects.select_for_update().get(name=name)
    except Target.DoesNotExist:
        raise UnknownTarget(f"no target named {name!r}") from None


def target_pause(*, name: str, actor: str, reason: str) -> Target:
    """Hold every delivery to the target named ``name``."""
    with transaction.atomic(durable=True):
        target = _target(name)
        paused = target_pause_event(name=name, actor=actor, reason=_reason(reason))
        projections.record(ev.target_stream(name), [paused], expected_version=Expect.ANY)
    target_pause_log(name=name, actor=actor, reason=paused.data["reason"])
    return Target.objects.get(pk=target.pk)


def target_resume(*, name: str, actor: str, reason: str) -> Target:
    """Let held deliveries go again; they are attempted as soon as they are due."""
    with transaction.atomic(durable=True):
        target = _target(name)
        resumed = ev.event(ev.TARGET_RESUMED, actor, target=name, actor=actor,
                           reason=_reason(reason))
        outbox_wake()
        projections.record(ev.target_stream(name), [resumed], expected_version=Expect.ANY)
    log.info("target %s resumed by %s: %s", name, actor, resumed.data["reason"])
    return Target.objects.get(pk=target.pk)


def target_pause_log(*, name: str, actor: str, reason: str) -> None:
    """The console line of a pause, by an operator or by the outbox itself (410 Gone)."""
    log.warning("target %s paused by %s: %s", name, actor or "the outbox", reason)


TEST_MILESTONE_ID = "console.test-delivery"


def target_test_send(*, name: str, actor: str) -> Delivery:
    """Emit a test milestone to the target ``name`` alone (it then shows in its feed)."""
    target = Target.objects.filter(name=name).first()
    if target is None:
        raise UnknownTarget(f"no target named {name!r}")
    now = js_iso_timestamp(timezone.now())
    event = {
        "milestoneId": TEST_MILESTONE_ID, "timestampUtc": now, "scope": "console",
        "claim": f"Test delivery to target {name}, sent from the operator console.",
        "evidence": [{"type": "log", "path": f"admin/targets/{name}",
                      "summary": f"sent by {actor or 'an operator'}"}],
        "riskStatus": "on-track", "nextAction": "None: this milestone only tests delivery.",
        "source": "operator",
    }
    result = milestone_emit(event=event, actor=actor, targets=[target])
    return Delivery.objects.get(pk=result.deliveries[0].delivery_id)
