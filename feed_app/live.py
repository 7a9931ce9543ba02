"""Live fan-out of accepted milestones across every web process (SPEC §6).

A trigger on ``feed_item`` (migration 0005) sends ``NOTIFY clawdbot_feed`` inside the
transaction that stores a milestone, so PostgreSQL delivers it exactly at commit, to every
listening process, and never for a rollback. Each web process has one ``Hub`` per event
loop: one connection that LISTENs, and on each wake-up reads the new feed rows **once**
and hands them to that process's sockets. A wake-up costs one query per process, whatever
the number of sockets, and needs neither Redis nor a channel layer (docs/ARCHITECTURE.md,
"Realtime", says why, with the measurement).

No gap, no repeat. The hub's ``cursor`` is the last position it has read. Appends commit
in position order (the event store's append lock), so reading ``position > cursor`` after
a notification never skips a row. A batch comes with the cursor it was read after; a
socket that has sent up to at least that cursor takes the batch's rows past its own
position, and one that is behind (it was still catching up) reads from the database
itself (consumers.py). A lost listener connection is opened again and reads past its
cursor, so a notification missed meanwhile loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import psycopg
from django.conf import settings
from psycopg import AsyncConnection, sql

from clawdbot import asyncdb
from clawdbot.contract import js_iso_timestamp
from clawdbot.wsserver import FRAME_KEY, text_message

logger = logging.getLogger(__name__)

CHANNEL = "clawdbot_feed"
READ_BATCH = 500
#: Seconds between attempts to open the listener connection again.
RECONNECT_S = 1.0
#: The listener connection's name in pg_stat_activity.
APPLICATION_NAME = "clawdbot-live"



def coalesce_s() -> float:
    """``CLAWDBOT_LIVE_COALESCE_MS``: the least time between two reads of one listener."""
    return settings.CLAWDBOT_LIVE_COALESCE_MS / 1000


_READ_AFTER = """
    SELECT position, idempotency_key, received_at, event FROM feed_item
    WHERE position > %s ORDER BY position LIMIT %s
"""
_LAST = "SELECT coalesce(max(position), 0) FROM feed_item"


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


@dataclass(frozen=True)
class Frame:
    """One message, serialised and framed once for every socket that sends it."""

    position: int
    text: str
    #: The ASGI ``websocket.send`` message (clawdbot.wsserver.text_message).
    send: dict[str, Any]


def frame(position: int, idempotency_key: str, received_at: Any, event: Any) -> Frame:
    message = milestone_message(position=position, idempotency_key=idempotency_key,
                                received_at=received_at, event=event)
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    return Frame(position, text, text_message(text))


@dataclass(frozen=True)
class Batch:
    """Every feed row after ``after`` up to the last frame's position, in position order."""

    after: int
    frames: tuple[Frame, ...]

    @cached_property
    def wire(self) -> bytes:
        """Every frame of the batch as it goes on the wire, joined once for all sockets."""
        return b"".join(f.send[FRAME_KEY] for f in self.frames)


Subscriber = Callable[[Batch], None]


class Hub:
    """The listener of one event loop and the sockets it serves."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.cursor = 0
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    async def subscribe(self, subscriber: Subscriber) -> None:
        """Add ``subscriber``; returns once the listener is LISTENing, so a milestone
        committed after this returns reaches the subscriber."""
        self.subscribers.add(subscriber)
        if self._task is None or self._task.done():
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(self._ready), name="clawdbot-live")
        assert self._ready is not None
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            self.unsubscribe(subscriber)
            raise

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._task is not None:
            self._task.cancel()  # nobody listens in this process: release the connection
            self._task = None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, ready: asyncio.Future[None]) -> None:
        while True:
            try:
                await self._listen(ready)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                logger.warning("live listener lost its connection (%s); reconnecting", exc)
            except Exception:
                logger.exception("live listener failed; restarting")
            await asyncio.sleep(RECONNECT_S)  # pacing reconnects to a database that is down

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        await asyncdb.start_embedded_server()
        conn = await AsyncConnection.connect(
            **{**asyncdb.connection_kwargs(), "application_name": APPLICATION_NAME})
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            if not ready.done():  # the first connection: start from the feed's end
                self.cursor = (await (await conn.execute(_LAST)).fetchone())[0]  # type: ignore[index]
                ready.set_result(None)
            else:  # a reconnection: what was committed meanwhile
                await self._read(conn)
            loop = asyncio.get_running_loop()
            last_read = 0.0
            while True:
                # The generator holds the connection until it ends: wait for one
                # notification, then read. Those that arrive meanwhile are kept by psycopg
                # and end the next wait at once.
                async for _notify in conn.notifies(stop_after=1):
                    pass
                # Under load, at most one read per COALESCE_S: each read costs a write on
                # every socket, so milestones that commit close together go out together.
                # A milestone after a quiet spell is read at once.
                pause = last_read + coalesce_s() - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                last_read = loop.time()
                await self._read(conn)
        finally:
            await conn.close()

    async def _read(self, conn: AsyncConnection[Any]) -> None:
        """Read past the cursor and hand each batch to every subscriber. Notifications
        that arrived while reading are covered by the read and cost one empty read."""
        while True:
            cursor = await conn.execute(_READ_AFTER, [self.cursor, READ_BATCH])
            rows = await cursor.fetchall()
            if not rows:
                return
            batch = Batch(self.cursor, tuple(frame(*row) for row in rows))
            self.cursor = batch.frames[-1].position
            for subscriber in tuple(self.subscribers):
                try:
                    subscriber(batch)
                except Exception:
                    logger.exception("a live subscriber failed")
            if len(rows) < READ_BATCH:
                return


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (one per process under a server)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found


async def close_hubs() -> None:
    """Stop this event loop's listener (tests that run a loop each call this)."""
    found = _hubs.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.stop()
