"""The outbox's event types and how their data is built.

All events of one emitted milestone (the emit, each target's delivery, every attempt and
operator action on them) are appended to one stream, ``outbox-<idempotencyKey>``, so
reading that stream tells the milestone's whole story. Target pauses go to
``outbox-target-<name>``.
"""

from __future__ import annotations

from typing import Any

from clawdbot.eventstore.store import NewEvent

MILESTONE_EMITTED = "outbox.milestone_emitted"
DELIVERY_QUEUED = "outbox.delivery_queued"
#: Written with the claim, before the request: a worker that dies mid-attempt leaves it.
DELIVERY_ATTEMPT_STARTED = "outbox.delivery_attempt_started"
DELIVERY_ATTEMPTED = "outbox.delivery_attempted"
DELIVERY_RETRY_SCHEDULED = "outbox.delivery_retry_scheduled"
DELIVERY_SUCCEEDED = "outbox.delivery_succeeded"
DELIVERY_REJECTED = "outbox.delivery_rejected"
DELIVERY_DEAD_LETTERED = "outbox.delivery_dead_lettered"
DELIVERY_REQUEUED = "outbox.delivery_requeued"
DELIVERY_DISCARDED = "outbox.delivery_discarded"
TARGET_PAUSED = "outbox.target_paused"
TARGET_RESUMED = "outbox.target_resumed"
#: An operator created a target, changed its settings or rotated its secrets (the data
#: names the fields changed and the secrets' fingerprints, never a secret).
TARGET_CONFIGURED = "outbox.target_configured"
#: A target with ``supports_batch`` answered a batch 404/405/413; its envelopes went alone.
TARGET_BATCH_REFUSED = "outbox.target_batch_refused"

PROJECTED_TYPES = (
    MILESTONE_EMITTED, DELIVERY_QUEUED, DELIVERY_ATTEMPT_STARTED, DELIVERY_ATTEMPTED,
    DELIVERY_RETRY_SCHEDULED, DELIVERY_SUCCEEDED, DELIVERY_REJECTED, DELIVERY_DEAD_LETTERED,
    DELIVERY_REQUEUED, DELIVERY_DISCARDED,
)


def milestone_stream(idempotency_key: str) -> str:
    return f"outbox-{idempotency_key}"


def target_stream(name: str) -> str:
    return f"outbox-target-{name}"


def event(type_: str, actor: str = "", /, **data: Any) -> NewEvent:
    """A ``NewEvent`` whose metadata names who caused it (empty: the system itself)."""
    return NewEvent(type_, data, {"actor": actor} if actor else {})
