"""Group commit for the lean ingest: one statement and one commit for the requests that
arrive together.

Every append holds the event store's append lock until its commit is on disk (that is what
keeps the feed gap-free, docs/ARCHITECTURE.md), so one commit per ingest makes ingests
wait for each other's disk flush in turn: measured, that flush was a third of the single
ingest's rate (docs/PERFORMANCE.md). Each web process therefore keeps one statement in
flight at a time: a request that arrives while one is running waits for it to end, and
all that waited go together in the next (``services.milestones_store_async``), up to
``CLAWDBOT_INGEST_GROUP_MAX``. A request alone goes at once, on its own; nothing waits for
a group to fill.

Each request still gets the answer it would have had alone:

- positions follow arrival order;
- a key given twice in one group is stored once, the later requests are duplicates naming
  the first's milestone (as if they had come just after it);
- a key stored before is a duplicate naming the stored milestone;
- when a group's statement fails for a reason of its own (not a lost database), each of
  its requests is tried alone, so one bad item cannot fail the others;
- a database that cannot be reached fails the whole group with ``ServiceUnavailable``
  (a 503: nothing was stored, each sender retries).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from django.conf import settings

from clawdbot.errors import ServiceUnavailable

if TYPE_CHECKING:
    from feed_app.services import IngestResult, MilestoneAccept

logger = logging.getLogger(__name__)

Waiting = tuple["MilestoneAccept", "asyncio.Future[IngestResult]"]


class Committer:
    """One event loop's ingest groups (``committer()`` gives this loop's)."""

    def __init__(self) -> None:
        self._waiting: list[Waiting] = []
        self._running = False
        #: (requests, statements) stored so far: how well requests were grouped.
        self.stored = [0, 0]

    async def store(self, accept: MilestoneAccept) -> IngestResult:
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((accept, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                limit = max(1, settings.CLAWDBOT_INGEST_GROUP_MAX)
                group, self._waiting = self._waiting[:limit], self._waiting[limit:]
                await self._store_group(group)
        finally:
            self._running = False

    async def _store_group(self, group: list[Waiting]) -> None:
        from feed_app.services import IngestResult, milestones_store_async

        first: dict[str, int] = {}  # key -> index of its first request in the group
        for i, (accept, _future) in enumerate(group):
            first.setdefault(accept.data["idempotencyKey"], i)
        distinct = [group[i][0] for i in first.values()]
        repeats = len(group) - len(distinct)
        results: list[IngestResult | BaseException]
        try:
            results = list(await milestones_store_async(distinct, repeats=repeats))
        except ServiceUnavailable as exc:
            results = [exc] * len(distinct)
        except Exception as exc:  # the requests' own answer
            if len(distinct) == 1:
                results = [exc]
            else:
                logger.exception("an ingest group of %d failed; storing each alone",
                                 len(distinct))
                results = [await _alone(accept) for accept in distinct]
        self.stored[0] += len(group)
        self.stored[1] += 1
        by_key = dict(zip(first, results, strict=True))
        for i, (accept, future) in enumerate(group):
            key = accept.data["idempotencyKey"]
            result = by_key[key]
            if first[key] != i and isinstance(result, IngestResult):
                # A repeat of a key earlier in this group: a duplicate of what that stored.
                result = IngestResult("duplicate", result.milestone_id)
            _settle(future, result)


async def _alone(accept: MilestoneAccept) -> IngestResult | BaseException:
    from feed_app.services import milestones_store_async

    try:
        (result,) = await milestones_store_async([accept])
    except Exception as exc:  # this request's own answer
        return exc
    return result


def _settle(future: asyncio.Future, result: object) -> None:
    if future.done():  # its request was cancelled (the client went away)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


_committers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Committer] = (
    weakref.WeakKeyDictionary()
)


def committer() -> Committer:
    """This event loop's committer."""
    loop = asyncio.get_running_loop()
    found = _committers.get(loop)
    if found is None:
        found = _committers[loop] = Committer()
    return found
