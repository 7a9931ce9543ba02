"""Batch ingest (SPEC §10): many envelopes in one signed request, one transaction.

The batch is checked like one envelope (headers -> JSON -> batch shape -> signature over
the whole body); a batch that fails is one rejection, as a single ingest's would be. Past
that, each envelope stands or falls alone and gets the answer a single ingest would have
given it: accepted, duplicate (a key stored before, or earlier in the same batch) or
rejected (recorded in the dead-letter). The accepted envelopes go to the event store in
one ``record_each`` call (one ``append_batch``, one projection pass) in input order, so the
feed, the projections and the positions are what one-at-a-time ingests would have left;
rejected items go to the dead-letter as single rejections do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clawdbot import contract, metrics
from clawdbot.contract.schema import NOT_OBJECT, NOT_STRING, REQUIRED
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import Append, Expect, NewEvent
from feed_app import checks
from feed_app.checks import IngestRequest, Refused
from feed_app.exceptions import BodyTooLarge, IngestRejected
from feed_app.models import FeedItem
from feed_app.projections import MILESTONE_ACCEPTED
from feed_app.services import _database_available, duplicates_count, rejection_record

#: At most this many envelopes per batch (SPEC §10).
MAX_ENVELOPES = 1000


@dataclass(frozen=True)
class ItemResult:
    idempotency_key: str | None
    status: str  # accepted, duplicate or rejected
    milestone_id: str | None = None
    reason: str | None = None
    errors: dict[str, list[str]] | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"idempotencyKey": self.idempotency_key, "status": self.status}
        if self.milestone_id is not None:
            body["milestoneId"] = self.milestone_id
        if self.reason is not None:
            body["reason"] = self.reason
        if self.errors:
            body["errors"] = self.errors
        return body


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    items: tuple[ItemResult, ...]

    def body(self) -> dict[str, Any]:
        return {"ok": True, "batchId": self.batch_id,
                "results": [item.body() for item in self.items]}


@dataclass(frozen=True)
class Batch:
    batch_id: str
    envelopes: list[Any]
    scheme: str = "none"  # the scheme that verified it, once it did


def batch_check(request: IngestRequest, *, now: datetime) -> Batch | Refused:
    """The single ingest's steps (checks.py) with the batch's shape in place of the
    envelope's: size -> headers -> JSON -> batch shape -> signature. Returns the batch,
    or ``Refused`` with what was learnt on the way; raises nothing."""
    scheme, batch_id = "none", None
    try:
        if request.over_limit:
            raise BodyTooLarge(settings.MILESTONE_INGEST_BATCH_MAX_BYTES)
        scheme = checks.schemes_presented(request.headers)
        schemes = checks.schemes_verifiable(request.headers)
        payload = checks.body_json(request.body)
        batch = batch_shape(payload)
        batch_id = batch.batch_id
        verified = checks.signature_verify(request, payload, schemes=schemes, key=batch_id,
                                           now=now, key_name="batchId")
    except IngestRejected as exc:
        return Refused(exc, scheme, batch_id)
    return Batch(batch.batch_id, batch.envelopes, verified)


def batch_shape(payload: Any) -> Batch:
    """``{batchId, sentAtUtc?, envelopes: [1…1000]}``; refuses anything else, naming it."""
    if not isinstance(payload, dict):
        raise _malformed({"body": [NOT_OBJECT]})
    errors: dict[str, list[str]] = {}
    batch_id = payload.get("batchId")
    if not contract.idempotency_key_valid(batch_id):
        errors["batchId"] = ["Must be 1-200 printable ASCII characters, as an "
                             "idempotencyKey (it is the webhook-id)."]
    sent_at = payload.get("sentAtUtc")
    if sent_at is not None:
        try:
            if not isinstance(sent_at, str):
                raise ValueError(NOT_STRING)
            contract.parse_timestamp(sent_at)
        except ValueError as exc:
            errors["sentAtUtc"] = [str(exc)]
    envelopes = payload.get("envelopes")
    if not isinstance(envelopes, list):
        errors["envelopes"] = [REQUIRED if "envelopes" not in payload
                               else "Must be an array of envelopes."]
    elif not 1 <= len(envelopes) <= MAX_ENVELOPES:
        errors["envelopes"] = [f"Must hold 1 to {MAX_ENVELOPES} envelopes, not "
                               f"{len(envelopes)}."]
    if errors:
        raise _malformed(errors)
    assert isinstance(batch_id, str) and isinstance(envelopes, list)  # checked above
    return Batch(batch_id, envelopes)


def item_check(raw: Any) -> contract.Envelope:
    """One envelope of an authenticated batch: valid, or the IngestRejected that a single
    ingest of it would have answered (key first, then content)."""
    validation = checks.envelope_validate(raw)
    checks.idempotency_key(raw, validation)
    return checks.envelope_valid(validation)


def _malformed(errors: dict[str, list[str]]) -> IngestRejected:
    return IngestRejected(
        "invalid_batch",
        f"body must be a batch: {{batchId, sentAtUtc, envelopes: [1…{MAX_ENVELOPES}]}}",
        errors=errors,
    )


def batch_ingest(*, request: IngestRequest) -> BatchResult:
    """Verify a batch and store its envelopes; per-item answers in input order.

    Raises ``IngestRejected`` (after recording it) when the batch as a whole is refused,
    and ``ServiceUnavailable`` when the database cannot be reached (nothing stored).
    """
    verdict = batch_check(request, now=timezone.now())
    if isinstance(verdict, Refused):
        rejection_record(request=request, error=verdict.rejection, scheme=verdict.scheme,
                         key=verdict.key)
        raise verdict.rejection
    with _database_available():
        result = _batch_store(verdict, verdict.scheme, request.remote_addr)
    for status in ("accepted", "duplicate"):  # its rejected items: by rejection_record
        metrics.ingest_count(status, n=sum(item.status == status for item in result.items))
    return result


@transaction.atomic(durable=True)
def _batch_store(batch: Batch, scheme: str, remote_addr: str) -> BatchResult:
    metadata = {"remoteAddr": remote_addr, "batchId": batch.batch_id}
    results: list[ItemResult | None] = []
    appends: list[Append] = []
    pending: dict[int, tuple[int, str, str]] = {}  # append index -> (item, key, milestoneId)
    first_of: dict[str, str] = {}  # key -> milestoneId of its first valid item
    for raw in batch.envelopes:
        try:
            envelope = item_check(raw)
        except IngestRejected as exc:
            key = raw.get("idempotencyKey") if isinstance(raw, dict) else None
            shown = key if isinstance(key, str) else None
            # In the dead-letter as the single ingest records it (same statement, same
            # per-address bounds), in this transaction; the rejection is not an event.
            rejection_record(request=IngestRequest(_item_bytes(raw), {}, remote_addr),
                             error=exc, scheme=scheme,
                             key=key if contract.idempotency_key_valid(key) else None)
            results.append(ItemResult(shown, "rejected", reason=exc.reason,
                                      errors=exc.errors or None))
            continue
        key, milestone_id = envelope.idempotency_key, envelope.event.milestone_id
        if key in first_of:
            results.append(ItemResult(key, "duplicate", first_of[key]))
            continue
        first_of[key] = milestone_id
        pending[len(appends)] = (len(results), key, milestone_id)
        appends.append(Append(f"feed-ingest-{key}", [NewEvent(MILESTONE_ACCEPTED, {
            "idempotencyKey": key, "sentAtUtc": envelope.sent_at_utc, "scheme": scheme,
            "event": envelope.event.raw}, metadata)], Expect.NO_STREAM))
        results.append(None)
    outcomes = projections.record_each(appends)
    conflicted = [pending[i][1] for i in pending if outcomes[i].conflict is not None]
    stored = dict(FeedItem.objects.filter(idempotency_key__in=conflicted)
                  .values_list("idempotency_key", "milestone_id")) if conflicted else {}
    for i, (at, key, milestone_id) in pending.items():
        if outcomes[i].conflict is not None:
            results[at] = ItemResult(key, "duplicate", stored.get(key, milestone_id))
            first_of[key] = stored.get(key, milestone_id)
        else:
            results[at] = ItemResult(key, "accepted", milestone_id)
    # A later duplicate of a key that was stored before names the stored milestone too.
    items = tuple(r if r is None or r.status != "duplicate" or r.idempotency_key is None
                  else ItemResult(r.idempotency_key, "duplicate", first_of[r.idempotency_key])
                  for r in results)
    duplicates_count(sum(1 for r in items if r is not None and r.status == "duplicate"))
    return BatchResult(batch.batch_id, tuple(r for r in items if r is not None))


def _item_bytes(raw: Any) -> bytes:
    """An item's own JSON, for the dead-letter's hash, size and excerpt."""
    try:
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "replace")
    except (TypeError, ValueError):
        return repr(raw).encode("utf-8", "replace")
