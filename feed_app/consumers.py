"""The live feed over WebSocket (SPEC §6): catch-up after ``?after=P``, then live messages.

No gap, no repeat: the consumer subscribes to its process's hub (feed_app/live.py)
*before* reading the catch-up, so a milestone committed meanwhile is either in the
catch-up read or in a batch queued for the consumer, which waits until the catch-up is
sent. A batch read after a position at or below the consumer's last sent one continues
it directly; otherwise (the consumer is behind) the consumer reads from the database
after its last position. Frames at or below the last position sent are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from clawdbot import metrics
from clawdbot.wsserver import WRITE_FRAMED
from feed_app import live, selectors

CATCH_UP_BATCH = 500
#: Batches a socket may have waiting before it is closed as too slow (1013: try again
#: later); its client reconnects with ``?after=`` and loses nothing.
MAX_QUEUED_BATCHES = 1000
#: Seconds a new socket waits for its process's listener (the database being reachable).
SUBSCRIBE_TIMEOUT_S = 10.0


#: Sockets open in this process, in all and per client address (behind a trusted proxy,
#: the client's own: clawdbot.forwarded rewrites the scope first). One event loop per
#: process, so plain counters suffice.
_open: Counter[str] = Counter()


def open_sockets() -> tuple[int, int]:
    """(sockets open in this process, addresses they come from)."""
    return sum(_open.values()), len(_open)


def _refusal(address: str) -> str | None:
    if sum(_open.values()) >= settings.CLAWDBOT_WS_MAX_PER_PROCESS:
        return "this server is at its limit of live sockets; try again later"
    if _open[address] >= settings.CLAWDBOT_WS_MAX_PER_ADDRESS:
        return "too many sockets from this address; close some or try again later"
    return None


class MilestoneConsumer(AsyncWebsocketConsumer):
    last_sent = 0
    _address: str | None = None

    async def connect(self) -> None:
        after = _after(self.scope.get("query_string", b""))
        if after is None:
            await self.close(code=4400)
            return
        address = str((self.scope.get("client") or ("unknown",))[0])
        refusal = _refusal(address)
        if refusal is not None:
            # Accepted only to say why (1013: try again later); no subscription is made.
            await self.accept()
            await self.close(code=1013, reason=refusal)
            return
        self._address = address
        _open[address] += 1
        self._queue: deque[live.Batch] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._hub = live.hub()
        self._pump: asyncio.Task[None] | None = None
        self._write_framed = self.scope.get("extensions", {}).get(WRITE_FRAMED)
        try:
            await asyncio.wait_for(self._hub.subscribe(self._enqueue), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:  # the database cannot be reached: nothing to promise
            await self.close(code=1011)
            return
        # Subscribed: every batch the hub reads from here on is queued for this socket, so
        # "live only" starts at the hub's cursor, fixed before the handshake completes: a
        # client whose socket is open gets every milestone committed after that.
        live_from = self._hub.cursor
        await self.accept()
        self._counted = True
        metrics.WS_CONNECTIONS.inc()
        self.last_sent = after if after >= 0 else live_from
        if self.last_sent < live_from:  # behind the hub: the catch-up is in the database
            await self._send_stored()
        self._pump = asyncio.create_task(self._send_live())

    def _enqueue(self, batch: live.Batch) -> None:
        # Idle and up to date (the pump waits, nothing queued, every frame new): the batch
        # goes to the socket now, in the hub's turn, if the server can write it as it is.
        if (self._wake is not None and not self._queue and self._write_framed is not None
                and batch.after <= self.last_sent < batch.frames[0].position
                and self._write_framed(batch.wire)):
            self.last_sent = batch.frames[-1].position
            return
        if len(self._queue) >= MAX_QUEUED_BATCHES:
            self._hub.unsubscribe(self._enqueue)
            asyncio.create_task(self.close(code=1013))
            return
        self._queue.append(batch)
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _send_live(self) -> None:
        # A deque and one future per wait: an asyncio.Queue's bookkeeping cost more than
        # the send itself with 1,000 sockets (docs/PERFORMANCE.md, the realtime profile).
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake = loop.create_future()
                await self._wake
                continue
            batch = self._queue.popleft()
            if batch.after > self.last_sent:  # behind this batch: read what is missing
                await self._send_stored()
            for item in batch.frames:
                if item.position > self.last_sent:
                    await self.base_send(item.send)
                    self.last_sent = item.position

    async def _send_stored(self) -> None:
        """Send every stored milestone after ``last_sent``, in position order."""
        while batch := await _frames_after(self.last_sent):
            for item in batch:
                await self.base_send(item.send)
            self.last_sent = batch[-1].position

    async def disconnect(self, code: int) -> None:
        if self._address is not None:
            _open[self._address] -= 1
            if _open[self._address] <= 0:
                del _open[self._address]
            self._address = None
        if getattr(self, "_counted", False):
            self._counted = False
            metrics.WS_CONNECTIONS.dec()
        hub = getattr(self, "_hub", None)
        if hub is not None:
            hub.unsubscribe(self._enqueue)
        pump = getattr(self, "_pump", None)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump  # an error sending to a closed socket ends the pump too

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      **kwargs: object) -> None:
        """Clients have nothing to say; their messages are ignored."""


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
def _frames_after(position: int) -> list[live.Frame]:
    return [live.frame(item.position, item.idempotency_key, item.received_at, item.event)
            for item in selectors.feed_after(position=position, limit=CATCH_UP_BATCH)]
