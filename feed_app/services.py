"""Write services of the feed side: ingest an envelope, record a rejection."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from psycopg_pool import PoolTimeout

from clawdbot import asyncdb, contract
from clawdbot.errors import ServiceUnavailable
from clawdbot.eventstore import store
from clawdbot.eventstore.store import Expect, NewEvent, RecordedEvent
from feed_app.broadcast import milestone_broadcast
from feed_app.checks import IngestCheck, IngestRequest
from feed_app.exceptions import IngestRejected
from feed_app.models import FeedItem
from feed_app.projections import (
    ACCEPT_ONE,
    INGEST_REJECTED,
    MILESTONE_ACCEPTED,
    accept_one_params,
)

logger = logging.getLogger(__name__)

#: How much of a rejected body the dead-letter keeps, in characters.
EXCERPT_CHARS = 2048
#: At most this many field errors are kept per rejection.
MAX_ERRORS = 50


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
    as a ``feed.ingest_rejected`` event, and ``ServiceUnavailable`` when the database cannot
    be reached (then nothing is stored). Duplicates are decided by the event store's unique
    stream version: exactly one of any number of concurrent identical requests is accepted.
    """
    check = IngestCheck(request, now=timezone.now())
    try:
        envelope = check.run()
    except IngestRejected as exc:
        rejection_record(request=request, error=exc, scheme=check.scheme, key=check.key)
        raise
    with _database_available():
        return _milestone_store(milestone_accept(request=request, check=check, envelope=envelope))


@dataclass(frozen=True)
class MilestoneAccept:
    """A verified, valid envelope ready to store as a ``feed.milestone_accepted`` event."""

    stream_id: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    milestone_id: str

    def params(self) -> dict[str, object]:
        """The parameters of the one-statement append + feed row (``ACCEPT_ONE``)."""
        return accept_one_params(lock=store.APPEND_LOCK_KEY, stream_id=self.stream_id,
                                 data=self.data, metadata=self.metadata)

    def recorded(self, position: int, recorded_at: datetime) -> RecordedEvent:
        return RecordedEvent(position, self.stream_id, 1, MILESTONE_ACCEPTED, self.data,
                             self.metadata, recorded_at)


def milestone_accept(
    *, request: IngestRequest, check: IngestCheck, envelope: contract.Envelope
) -> MilestoneAccept:
    """What an accepted ``envelope`` (``check.run()`` passed) is stored as."""
    data = {
        "idempotencyKey": envelope.idempotency_key,
        "sentAtUtc": envelope.sent_at_utc,
        "scheme": check.scheme,
        "event": envelope.event.raw,
    }
    return MilestoneAccept(f"feed-ingest-{envelope.idempotency_key}", data,
                           {"remoteAddr": request.remote_addr}, envelope.event.milestone_id)


@transaction.atomic(durable=True)
def _milestone_store(accept: MilestoneAccept) -> IngestResult:
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(ACCEPT_ONE, accept.params(), prepare=True)
        row = cursor.fetchone()
    if row is None:
        stored = (FeedItem.objects.filter(idempotency_key=accept.data["idempotencyKey"])
                  .values_list("milestone_id", flat=True).first())
        return IngestResult("duplicate", stored if stored is not None else accept.milestone_id)
    recorded = accept.recorded(*row)
    transaction.on_commit(partial(milestone_broadcast, event=recorded))
    return IngestResult("accepted", accept.milestone_id, recorded.position)


_DUPLICATE_OF = "SELECT milestone_id FROM feed_item WHERE idempotency_key = %s"


async def milestone_store_async(accept: MilestoneAccept) -> IngestResult:
    """``_milestone_store`` on the event loop: one statement on the asyncio pool.

    The statement is its own transaction (autocommit), so the broadcast that follows comes
    after the commit, and a failure leaves nothing stored. A database that cannot be
    reached raises ``ServiceUnavailable``.
    """
    try:
        async with (await asyncdb.pool()).connection() as conn:
            cursor = await conn.execute(ACCEPT_ONE, accept.params(), prepare=True)
            row = await cursor.fetchone()
            if row is None:
                cursor = await conn.execute(_DUPLICATE_OF, [accept.data["idempotencyKey"]])
                stored = await cursor.fetchone()
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        logger.warning("database unavailable during ingest: %s", exc)
        raise ServiceUnavailable() from exc
    if row is None:
        return IngestResult("duplicate", stored[0] if stored else accept.milestone_id)
    recorded = accept.recorded(*row)
    milestone_broadcast(event=recorded)
    return IngestResult("accepted", accept.milestone_id, recorded.position)


def rejection_record(
    *, request: IngestRequest, error: IngestRejected, scheme: str, key: str | None
) -> None:
    """Append a ``feed.ingest_rejected`` event (projected into the dead-letter).

    Keeps the reason, the field errors, the key when one was readable, the scheme, the
    remote address, the body's SHA-256 and size and a short excerpt: never a header value.
    """
    data: dict[str, Any] = {
        "httpStatus": error.status_code,
        "reasonCode": error.code,
        "reason": error.reason,
        "errors": dict(list((error.errors or {}).items())[:MAX_ERRORS]),
        "scheme": scheme,
        "remoteAddr": request.remote_addr,
        "bodySha256": hashlib.sha256(request.body).hexdigest(),
        "bodyBytes": request.body_bytes if request.body_bytes is not None else len(request.body),
        "bodyExcerpt": _excerpt(request.body),
    }
    if key:
        data["idempotencyKey"] = key
    with _database_available(), transaction.atomic(durable=True):
        store.append(
            f"feed-rejection-{uuid.uuid4().hex}",
            [NewEvent(INGEST_REJECTED, data)],
            expected_version=Expect.NO_STREAM,
        )


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
