"""Live fan-out of accepted milestones to WebSocket clients (SPEC §6), after commit only."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from clawdbot.contract import js_iso_timestamp
from clawdbot.eventstore.store import RecordedEvent

logger = logging.getLogger(__name__)

GROUP = "milestones"


def milestone_message(
    *, position: int, idempotency_key: str, received_at: Any, event: dict[str, Any]
) -> dict[str, Any]:
    """The WebSocket message for one stored milestone, as catch-up and live both send it."""
    return {
        "type": "milestone",
        "position": position,
        "idempotencyKey": idempotency_key,
        "receivedAtUtc": js_iso_timestamp(received_at),
        "event": event,
    }


def milestone_broadcast(*, event: RecordedEvent) -> None:
    """Send an accepted milestone to the live group. Call from ``transaction.on_commit``.

    A failure here cannot undo the committed ingest, so it is logged, not raised: clients
    that miss a message recover it by reconnecting with ``?after=``.
    """
    message = milestone_message(
        position=event.position,
        idempotency_key=event.data["idempotencyKey"],
        received_at=event.recorded_at,
        event=event.data["event"],
    )
    try:
        async_to_sync(get_channel_layer().group_send)(
            GROUP, {"type": "milestone.live", "message": message}
        )
    except Exception:  # the ingest already committed; see the docstring
        logger.exception("broadcast of milestone at position %s failed", event.position)
