"""Write services of the feed side: ingest an envelope, record a rejection."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from clawdbot.errors import ServiceUnavailable
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import ConcurrencyError, Expect, NewEvent
from feed_app.broadcast import milestone_broadcast
from feed_app.checks import IngestCheck, IngestRequest
from feed_app.exceptions import IngestRejected
from feed_app.models import FeedItem
from feed_app.projections import INGEST_REJECTED, MILESTONE_ACCEPTED

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
    data = {
        "idempotencyKey": envelope.idempotency_key,
        "sentAtUtc": envelope.sent_at_utc,
        "scheme": check.scheme,
        "event": envelope.event.raw,
    }
    metadata = {"remoteAddr": request.remote_addr}
    with _database_available():
        return _milestone_store(data, metadata, envelope.event.milestone_id)


@transaction.atomic(durable=True)
def _milestone_store(
    data: dict[str, Any], metadata: dict[str, Any], milestone_id: str
) -> IngestResult:
    key = data["idempotencyKey"]
    try:
        (recorded,) = projections.record(
            f"feed-ingest-{key}",
            [NewEvent(MILESTONE_ACCEPTED, data, metadata)],
            expected_version=Expect.NO_STREAM,
        )
    except ConcurrencyError:
        stored = (FeedItem.objects.filter(idempotency_key=key)
                  .values_list("milestone_id", flat=True).first())
        return IngestResult("duplicate", stored if stored is not None else milestone_id)
    transaction.on_commit(partial(milestone_broadcast, event=recorded))
    return IngestResult("accepted", milestone_id, recorded.position)


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
        projections.record(
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
