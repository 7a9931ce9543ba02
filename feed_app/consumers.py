"""The live feed over WebSocket (SPEC §6): catch-up after ``?after=P``, then live messages.

No gap, no repeat: the consumer joins the live group *before* reading the catch-up, so a
milestone committed meanwhile is either in the catch-up read or queued for the consumer
(Channels hands a consumer its messages one at a time, so they wait until the catch-up is
sent). A live message is only a signal that the feed moved past its position: the
consumer then sends what the database holds after the last position it sent. Appends
commit in position order (the event store's append lock), so that read never skips a
milestone, even when two broadcasts arrive out of order or one is lost; messages at or
below the last position sent are dropped.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from feed_app import selectors
from feed_app.broadcast import GROUP, milestone_message

CATCH_UP_BATCH = 500


class MilestoneConsumer(AsyncJsonWebsocketConsumer):
    last_sent = 0

    async def connect(self) -> None:
        after = _after(self.scope.get("query_string", b""))
        if after is None:
            await self.close(code=4400)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        self.last_sent = after if after >= 0 else await _last_position()
        await self._send_stored()

    async def _send_stored(self) -> None:
        """Send every stored milestone after ``last_sent``, in position order."""
        while batch := await _batch_after(self.last_sent):
            for message in batch:
                await self.send_json(message)
            self.last_sent = batch[-1]["position"]

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content: object, **kwargs: object) -> None:
        """Clients have nothing to say; their messages are ignored."""

    async def milestone_live(self, event: dict) -> None:
        if event["message"]["position"] > self.last_sent:
            await self._send_stored()


def _after(query_string: bytes) -> int | None:
    """``?after=P`` as an int; -1 when absent (live only); None when malformed."""
    values = parse_qs(query_string.decode("latin-1")).get("after")
    if not values:
        return -1
    try:
        after = int(values[-1])
    except ValueError:
        return None
    return after if after >= 0 else None


@database_sync_to_async
def _last_position() -> int:
    return selectors.feed_last_position()


@database_sync_to_async
def _batch_after(position: int) -> list[dict]:
    return [
        milestone_message(position=item.position, idempotency_key=item.idempotency_key,
                          received_at=item.received_at, event=item.event)
        for item in selectors.feed_after(position=position, limit=CATCH_UP_BATCH)
    ]
