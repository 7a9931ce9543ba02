"""Write services of the feed side: ingest an envelope, record a rejection."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from psycopg_pool import PoolTimeout

from clawdbot import asyncdb, metrics
from clawdbot.errors import ServiceUnavailable
from clawdbot.eventstore import projections, store
from clawdbot.eventstore.store import ConcurrencyError, Expect, NewEvent, RecordedEvent
from feed_app.checks import IngestRequest, Passed, Refused, ingest_check
from feed_app.exceptions import IngestRejected
from feed_app.models import FeedItem
from feed_app.projections import (
    ACCEPT_MANY,
    ACCEPT_ONE,
    MILESTONE_ACCEPTED,
    accept_many_params,
    accept_one_params,
)

logger = logging.getLogger(__name__)

#: How much of a rejected body the dead-letter keeps, in characters.
EXCERPT_CHARS = 1024
#: At most this many field errors are kept per rejection, each clipped.
MAX_ERRORS = 50
ERROR_PATH_CHARS = 200
ERROR_MESSAGE_CHARS = 300
REASON_CHARS = 500


@dataclass(frozen=True)
class IngestResult:
    status: str  # "accepted" or "duplicate"
    milestone_id: str
    position: int | None = None

    def body(self) -> dict[str, Any]:
        return {"ok": True, "status": self.status, "milestoneId": self.milestone_id}


def envelope_ingest(*, request: IngestRequest) -> IngestResult:
    """Verify, validate and store one ingest request (SPEC §3-4).

    Returns accepted or duplicate; raises ``IngestRejected`` after recording the rejection
    in the dead-letter (``rejection_record``), and ``ServiceUnavailable`` when the database cannot
    be reached (then nothing is stored). Duplicates are decided by the event store's unique
    stream version: exactly one of any number of concurrent identical requests is accepted.
    """
    verdict = ingest_check(request, now=timezone.now())
    if isinstance(verdict, Refused):
        rejection_record(request=request, error=verdict.rejection, scheme=verdict.scheme,
                         key=verdict.key)
        raise verdict.rejection
    with _database_available():
        result = _milestone_store(milestone_accept(request=request, verdict=verdict))
    metrics.ingest_count(result.status)
    return result


@dataclass(frozen=True)
class MilestoneAccept:
    """A verified, valid envelope ready to store as a ``feed.milestone_accepted`` event."""

    stream_id: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    milestone_id: str
    timestamp: datetime  # the event's timestampUtc, parsed

    def event(self) -> NewEvent:
        return NewEvent(MILESTONE_ACCEPTED, self.data, self.metadata)

    def recorded(self, position: int, recorded_at: datetime) -> RecordedEvent:
        return RecordedEvent(position, self.stream_id, 1, MILESTONE_ACCEPTED, self.data,
                             self.metadata, recorded_at)


def milestone_accept(*, request: IngestRequest, verdict: Passed) -> MilestoneAccept:
    """What a request whose checks passed is stored as."""
    envelope = verdict.envelope
    data = {
        "idempotencyKey": envelope.idempotency_key,
        "sentAtUtc": envelope.sent_at_utc,
        "scheme": verdict.scheme,
        "event": envelope.event.raw,
    }
    return MilestoneAccept(f"feed-ingest-{envelope.idempotency_key}", data,
                           {"remoteAddr": request.remote_addr}, envelope.event.milestone_id,
                           envelope.event.timestamp)


@transaction.atomic(durable=True)
def _milestone_store(accept: MilestoneAccept) -> IngestResult:
    try:
        (recorded,) = projections.record(
            accept.stream_id, [accept.event()], expected_version=Expect.NO_STREAM
        )
    except ConcurrencyError:
        stored = (FeedItem.objects.filter(idempotency_key=accept.data["idempotencyKey"])
                  .values_list("milestone_id", flat=True).first())
        duplicates_count(1)
        return IngestResult("duplicate", stored if stored is not None else accept.milestone_id)
    return IngestResult("accepted", accept.milestone_id, recorded.position)


_DUPLICATES_OF = ("SELECT idempotency_key, milestone_id FROM feed_item"
                  " WHERE idempotency_key = ANY(%s)")
#: Duplicates counted in their hour (``DuplicateHour``): one row per hour, so bounded.
COUNT_DUPLICATES = (
    "INSERT INTO feed_duplicate_hour AS d (hour, count) VALUES "
    "(date_trunc('hour', statement_timestamp()), %s) "
    "ON CONFLICT (hour) DO UPDATE SET count = d.count + excluded.count")


def duplicates_count(n: int) -> None:
    """Count ``n`` duplicate ingests in this hour (in the caller's transaction, if any)."""
    if n:
        with connection.cursor() as cursor:
            cursor.execute(COUNT_DUPLICATES, [n])


async def milestone_store_async(accept: MilestoneAccept) -> IngestResult:
    """Store one accepted milestone from the event loop, as ``_milestone_store`` would.

    The requests of one web process that arrive while its previous statement is in flight
    are stored together, in one statement and one commit (``feed_app.group_commit``): the
    append lock is held until the commit is on disk, so one commit per ingest would make
    every ingest wait for its own disk flush in turn. Each gets the answer it would have
    had alone. A database that cannot be reached raises ``ServiceUnavailable``.
    """
    from feed_app import group_commit

    if settings.CLAWDBOT_INGEST_GROUP_MAX <= 1:  # grouping off: each its own statement
        (result,) = await milestones_store_async([accept])
        return result
    return await group_commit.committer().store(accept)


async def milestones_store_async(accepts: list[MilestoneAccept], *,
                                 repeats: int = 0) -> list[IngestResult]:
    """Store accepted milestones of distinct keys, in one statement when there are several.

    ``feed_app.projections.ACCEPT_ONE`` (one) or ``ACCEPT_MANY`` (several) is
    ``projections.record`` of the events folded into a single statement (the store's
    append, then the feed projection's rows), its own transaction in autocommit: one round
    trip instead of five (its NOTIFY goes out at the commit), and a failure leaves nothing
    stored. A key that exists already is a duplicate naming the stored milestone.
    ``repeats``: how many more requests repeated these keys (the caller answers them as
    duplicates), counted with the duplicates. Callers check first that the feed is the
    only inline projection of the event (``feed_app.asgi.accept_one_is_record``).
    """
    try:
        async with (await asyncdb.pool()).connection() as conn:
            if len(accepts) == 1:
                (accept,) = accepts
                params = accept_one_params(lock=store.APPEND_LOCK_KEY,
                                           stream_id=accept.stream_id, data=accept.data,
                                           metadata=accept.metadata,
                                           timestamp=accept.timestamp)
                cursor = await conn.execute(ACCEPT_ONE, params, prepare=True)
                row = await cursor.fetchone()
                appended = {accept.data["idempotencyKey"]: row[0]} if row else {}
            else:
                params = accept_many_params(lock=store.APPEND_LOCK_KEY, items=[
                    (a.stream_id, a.data, a.metadata, a.timestamp) for a in accepts])
                cursor = await conn.execute(ACCEPT_MANY, params, prepare=True)
                appended = {key: position for key, position, _at in await cursor.fetchall()}
            stored: dict[str, str] = {}
            duplicates = [a.data["idempotencyKey"] for a in accepts
                          if a.data["idempotencyKey"] not in appended]
            if duplicates:
                cursor = await conn.execute(_DUPLICATES_OF, [duplicates], prepare=True)
                stored = dict(await cursor.fetchall())
            if duplicates or repeats:
                await conn.execute(COUNT_DUPLICATES, [len(duplicates) + repeats], prepare=True)
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        logger.warning("database unavailable during ingest: %s", exc)
        raise ServiceUnavailable() from exc
    results = []
    for a in accepts:
        key = a.data["idempotencyKey"]
        if key in appended:
            results.append(IngestResult("accepted", a.milestone_id, appended[key]))
        else:
            results.append(IngestResult("duplicate", stored.get(key, a.milestone_id)))
    metrics.ingest_count("accepted", n=len(appended))
    metrics.ingest_count("duplicate", n=len(accepts) - len(appended) + repeats)
    return results


_RECORD_REJECTION = """
WITH win AS (
    INSERT INTO feed_rejection_window AS w (remote_addr, minute, hits)
    VALUES (%(addr)s, date_trunc('minute', statement_timestamp()), 1)
    ON CONFLICT (remote_addr, minute) DO UPDATE SET hits = w.hits + 1
    RETURNING w.hits, w.minute
), detail AS (
    INSERT INTO feed_rejection (recorded_at, last_at, count, aggregate, window_start,
                                http_status, reason_code, reason, errors, idempotency_key,
                                scheme, remote_addr, body_sha256, body_bytes, body_excerpt)
    SELECT statement_timestamp(), statement_timestamp(), 1, false, NULL, %(status)s,
           %(code)s, %(reason)s, %(errors)s::jsonb, %(key)s, %(scheme)s, %(addr)s,
           %(sha)s, %(size)s, %(excerpt)s
    FROM win WHERE win.hits <= %(limit)s
)
INSERT INTO feed_rejection AS r (recorded_at, last_at, count, aggregate, window_start,
                                 http_status, reason_code, reason, errors, idempotency_key,
                                 scheme, remote_addr, body_sha256, body_bytes, body_excerpt)
SELECT statement_timestamp(), statement_timestamp(), 1, true, win.minute, %(status)s,
       %(code)s, %(reason)s, '{}'::jsonb, %(key)s, %(scheme)s, %(addr)s, %(sha)s, %(size)s, ''
FROM win WHERE win.hits > %(limit)s
ON CONFLICT (remote_addr, window_start, reason_code) WHERE aggregate
DO UPDATE SET count = r.count + 1, last_at = excluded.last_at
"""


def rejection_record(
    *, request: IngestRequest, error: IngestRejected, scheme: str, key: str | None
) -> None:
    """Record a rejection in the dead-letter (``feed_rejection``), cheaply and boundedly.

    One autocommit statement, no event and so no append lock: rejections need no global
    order, and a flood of them must not queue behind (or in front of) accepted ingests.
    It counts the rejection in its address's current minute; up to
    ``MILESTONE_REJECTION_DETAILS_PER_MINUTE`` of them are kept one by one (reason, field
    errors, the key when one was readable, the scheme, the address, the body's SHA-256 and
    size and a short excerpt, never a header value), the rest of the minute only adds to
    one aggregate row per reason. Every value is clipped to its column.
    """
    errors = {
        _clip(str(path), ERROR_PATH_CHARS): [_clip(str(m), ERROR_MESSAGE_CHARS) for m in msgs][:5]
        for path, msgs in list((error.errors or {}).items())[:MAX_ERRORS]
    }
    size = request.body_bytes if request.body_bytes is not None else len(request.body)
    params = {
        "addr": _clip(request.remote_addr, 64),
        "limit": settings.MILESTONE_REJECTION_DETAILS_PER_MINUTE,
        "status": error.status_code,
        "code": _clip(error.code, 40),
        "reason": _clip(error.reason, REASON_CHARS),
        "errors": json.dumps(errors),
        "key": _clip(key or "", 200),
        "scheme": _clip(scheme, 20),
        "sha": hashlib.sha256(request.body).hexdigest(),
        "size": size,
        "excerpt": _excerpt(request.body),
    }
    with _database_available(), connection.cursor() as cursor:
        cursor.execute(_RECORD_REJECTION, params)
    metrics.ingest_count("rejected", params["code"])
    logger.warning("ingest rejected: %s %s key=%s from %s: %s", params["status"],
                   params["code"], params["key"] or "-", params["addr"] or "-", params["reason"])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _excerpt(body: bytes) -> str:
    # Decoding with "replace" leaves no surrogates; NUL is the one storable-breaking char.
    return body[:EXCERPT_CHARS].decode("utf-8", "replace").replace("\x00", "\ufffd")


@contextmanager
def _database_available() -> Iterator[None]:
    """Turn a lost or refused database connection into a 503 (``ServiceUnavailable``)."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        logger.warning("database unavailable during ingest: %s", exc)
        raise ServiceUnavailable() from exc
