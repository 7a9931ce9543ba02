"""Delivery: claim due deliveries, POST them signed (outside any transaction), record.

A claim is a lease, owned by a token drawn for that claim alone (not by the process: a
process holds many claims over time, some perhaps expired and taken over by another
worker, and an outcome must only release the lease it was sent under). It is written in
one UPDATE over rows picked with ``FOR UPDATE SKIP LOCKED``, so concurrent workers never
pick the same row, together with an ``outbox.delivery_attempt_started`` event per row in
the same transaction: a worker that dies mid-attempt leaves that event in the history,
and its lease expires, after which any worker attempts again (the receiver deduplicates
by idempotencyKey, so a repeat is harmless).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from clawdbot import metrics
from clawdbot.contract import js_iso_timestamp, signed_headers
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import Append, Expect, NewEvent
from orchestrator_app import events as ev
from orchestrator_app import retry
from orchestrator_app.headers import request_headers_recorded, response_headers_recorded
from orchestrator_app.models import OPEN_STATUSES, Delivery, EmittedMilestone, Status, Target
from orchestrator_app.services import batch
from orchestrator_app.services.triage import target_pause_event, target_pause_log
from orchestrator_app.transport import Transport, TransportResponse

log = logging.getLogger(__name__)

EXCERPT_BYTES = 2048
ERROR_CHARS = 1000

# Each target's due rows are picked on their own (at most ``per_target`` of them, fewer by
# what this worker already has in flight for it), so a target with a backlog, or one
# whose attempts hang, cannot crowd the others out of a claim.
#
# A claimed batch is sent ``parallel`` at a time in ``k`` order, so the k-th row may wait
# for k // parallel rounds of the batch's slowest timeout before its own request starts: its
# lease covers those rounds and then its own target's timeout, or it would expire (and the
# row be sent again by another worker) while this one is still working through the batch.
# The dispatcher sends a whole claim at once (``parallel`` = ``limit``): each lease is then
# its own target's timeout plus the margin, whatever the other targets do.
_CLAIM = """
WITH picked AS (
    SELECT c.id, c.target, c.next_attempt_at, t.timeout_s FROM orchestrator_target t
    CROSS JOIN LATERAL (
        SELECT d.id, d.target, d.next_attempt_at FROM orchestrator_delivery d
        WHERE d.target = t.name AND d.status IN ('pending', 'retrying')
          AND d.next_attempt_at <= clock_timestamp() - make_interval(secs => %(overdue)s)
          AND (d.lease_expires_at IS NULL OR d.lease_expires_at < clock_timestamp())
          AND (%(ids)s::uuid[] IS NULL OR d.id = ANY(%(ids)s::uuid[]))
        ORDER BY d.next_attempt_at
        LIMIT %(per_target)s
        FOR UPDATE OF d SKIP LOCKED
    ) c
    WHERE NOT EXISTS (SELECT FROM orchestrator_target_pause p WHERE p.target = t.name)
      AND (%(batching)s::boolean IS NULL OR %(batching)s::boolean =
           (t.supports_batch AND NOT t.name = ANY(%(refusing)s::text[])))
), allowed AS (
    SELECT *, row_number() OVER (PARTITION BY target ORDER BY next_attempt_at, id) AS n
    FROM picked
), chosen AS (
    SELECT id, next_attempt_at, timeout_s FROM allowed
    WHERE n <= %(per_target)s - coalesce((%(busy)s::jsonb ->> target)::int, 0)
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
), ranked AS (
    SELECT id, timeout_s, row_number() OVER (ORDER BY next_attempt_at, id) - 1 AS k,
           max(timeout_s) OVER () AS slowest
    FROM chosen
)
UPDATE orchestrator_delivery d
SET lease_owner = %(owner)s,
    lease_expires_at = clock_timestamp() + make_interval(
        secs => %(margin)s + r.slowest * (r.k / %(parallel)s) + r.timeout_s)
FROM ranked r
WHERE d.id = r.id
RETURNING d.id, r.k, d.idempotency_key, d.attempts + 1
"""


@dataclass(frozen=True)
class Claim:
    """A leased delivery: ``owner`` is the claim's token (the lease's owner), ``worker``
    the process that holds it, ``started_position`` its attempt-started event."""

    delivery_id: str
    owner: str
    worker: str = ""
    started_position: int | None = None


def worker_name() -> str:
    """Which process makes an attempt (recorded with it): host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@transaction.atomic(durable=True)
def deliveries_claim(
    *, limit: int, worker: str | None = None, ids: Sequence[str] | None = None,
    overdue_s: float = 0.0, parallel: int = 1, per_target: int | None = None,
    busy: Mapping[str, int] | None = None, batching: bool | None = None,
    refusing: Sequence[str] = (),
) -> list[Claim]:
    """Lease up to ``limit`` due deliveries (of ``ids``, if given) under a new claim
    token, in the order to send them, ``parallel`` at a time, and record that each
    attempt started.

    At most ``per_target`` per target (default: ``limit``), less ``busy[target]`` (what
    the caller has in flight there). The clock is the database's wall clock, not the
    transaction's start. ``overdue_s`` picks only deliveries due at least that long ago
    (the sweep's margin). ``batching`` True picks only targets that take batches (those
    with ``supports_batch``, less the ``refusing`` ones), False only the others.
    """
    token, worker = uuid.uuid4().hex, worker or worker_name()
    params: dict[str, str | float | list[str] | None] = {
        "owner": token, "margin": float(settings.MILESTONE_LEASE_MARGIN_S),
        "overdue": float(overdue_s), "limit": limit, "parallel": max(1, parallel),
        "per_target": per_target or limit, "busy": json.dumps(dict(busy or {})),
        "ids": [str(i) for i in ids] if ids is not None else None,
        "batching": batching, "refusing": list(refusing),
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, params)
        rows = sorted(cursor.fetchall(), key=lambda r: r[1])
    recorded = projections.record_batch([
        projections.Append(ev.milestone_stream(key), [ev.event(
            ev.DELIVERY_ATTEMPT_STARTED, deliveryId=str(delivery_id), number=number,
            claim=token, worker=worker)], Expect.ANY)
        for delivery_id, _, key, number in rows])
    return [Claim(str(row[0]), token, worker, e.position)
            for row, e in zip(rows, recorded, strict=True)]


@dataclass(frozen=True)
class Job:
    """A claimed delivery with what sending it needs, loaded before any HTTP."""

    claim: Claim
    milestone: EmittedMilestone
    target: Target


@dataclass(frozen=True)
class Sent:
    """An attempt that ended. A batch item's ``verdict`` and ``note`` say what its
    result meant (the response alone is the batch's 2xx); ``refusal`` says why an
    envelope meant for a batch was sent alone."""

    claim: Claim
    response: TransportResponse
    attempted_at: datetime
    verdict: retry.Verdict | None = None
    note: str = ""
    batch_id: str = ""
    refusal: str = ""
    target: str = ""  # the target that refused (set on the first envelope sent alone)
    request_headers: Mapping[str, str] = field(default_factory=dict)  # as sent, if alone


def deliveries_load(*, claims: Sequence[Claim]) -> list[Job]:
    """Three queries for a whole batch of claims."""
    rows = {str(d.pk): d for d in Delivery.objects.filter(pk__in=[c.delivery_id for c in claims])}
    milestones = EmittedMilestone.objects.in_bulk({d.idempotency_key for d in rows.values()})
    targets = Target.objects.in_bulk({d.target for d in rows.values()}, field_name="name")
    return [Job(c, milestones[rows[c.delivery_id].idempotency_key],
                targets[rows[c.delivery_id].target]) for c in claims]


def job_send(job: Job, transport: Transport) -> Sent:
    """Send one job; any exception becomes a failed attempt of that job alone.

    Transports should not raise, but one that does must not lose the whole batch: nothing
    of it would be recorded, and every delivery in it would be sent again at each lease
    expiry, forever, without ever reaching dead-letter.
    """
    attempted_at = timezone.now()
    headers: dict[str, str] = {}
    try:
        response = delivery_send(milestone=job.milestone, target=job.target,
                                 transport=transport, sent_headers=headers)
    except Exception as exc:
        response = TransportResponse(None, error=f"{exc.__class__.__name__}: {exc}")
    return Sent(job.claim, response, attempted_at, request_headers=headers)


def units(jobs: Sequence[Job], *, refusing: Sequence[str] = ()) -> list[list[Job]]:
    """What to send as one request each: the jobs of a target that takes batches, when
    there are several, in batches (``batch.batches_of``); every other job alone."""
    by_target: dict[str, list[Job]] = {}
    alone: list[list[Job]] = []
    for job in jobs:
        if job.target.supports_batch and job.target.name not in refusing:
            by_target.setdefault(job.target.name, []).append(job)
        else:
            alone.append([job])
    for group in by_target.values():
        if len(group) == 1:
            alone.append(group)
            continue
        for chunk in batch.batches_of([j.milestone.envelope for j in group]):
            alone.append(group[chunk.start:chunk.stop])
    return alone


def unit_send(unit: Sequence[Job], transport: Transport) -> list[Sent]:
    """Send a unit of ``units``: one job as ever, several as one batch; never raises.

    A target that refuses the batch (``batch.REFUSING_STATUSES``) gets each envelope on
    its own at once, one after the other, under leases extended to cover that; the
    refusal is noted (``batch.batch_refusals``) and recorded with each attempt.
    """
    if len(unit) == 1:
        return [job_send(unit[0], transport)]
    target = unit[0].target
    attempted_at = timezone.now()
    try:
        answer = batch.batch_send(target=target, keys=[j.milestone.idempotency_key for j in unit],
                                  envelopes=[j.milestone.envelope for j in unit],
                                  transport=transport)
    except Exception as exc:
        failed = TransportResponse(None, error=f"{exc.__class__.__name__}: {exc}")
        return [Sent(j.claim, failed, attempted_at) for j in unit]
    if answer.items is not None:
        return [Sent(j.claim, item.response, attempted_at, item.verdict, item.error,
                     answer.batch_id) for j, item in zip(unit, answer.items, strict=True)]
    log.warning("target %s refused a batch (%s): sending its %d envelopes one at a time "
                "for %g s", target.name, answer.refusal, len(unit), batch.REFUSAL_COOLDOWN_S)
    batch.batch_refusal_note(target.name)
    try:
        deliveries_lease_extend(claims=[j.claim for j in unit], each_s=target.timeout_s)
    except Exception:  # the leases may expire early: another worker then sends it again
        log.exception("could not extend the leases of a refused batch")
    sent = []
    for n, job in enumerate(unit):
        alone = job_send(job, transport)
        sent.append(replace(alone, refusal=answer.refusal,
                            target=target.name if n == 0 else ""))
    return sent


@transaction.atomic(durable=True)
def deliveries_lease_extend(*, claims: Sequence[Claim], each_s: float) -> None:
    """Lengthen the leases of ``claims`` (sent one after another, in order) so each covers
    the attempts before it and its own: coordination, not history (see models.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orchestrator_delivery d SET lease_expires_at = clock_timestamp() + "
            "make_interval(secs => %s + %s * c.k) FROM unnest(%s::uuid[], %s::text[]) "
            "WITH ORDINALITY AS c(id, owner, k) WHERE d.id = c.id AND d.lease_owner = c.owner",
            [float(settings.MILESTONE_LEASE_MARGIN_S), float(each_s),
             [c.delivery_id for c in claims], [c.owner for c in claims]])


def delivery_send(
    *, milestone: EmittedMilestone, target: Target, transport: Transport,
    sent_headers: dict[str, str] | None = None,
) -> TransportResponse:
    """Sign the envelope the emit serialised, exactly those bytes, and POST them. No
    database. (The legacy scheme signs what the receiver parses from the bytes.) The
    headers sent are added to ``sent_headers`` when given, for the attempt's record."""
    body = milestone.envelope.encode("utf-8")
    url = target.resolved_url()
    try:
        headers = signed_headers(
            body=body, idempotency_key=milestone.idempotency_key,
            legacy_secrets=target.legacy_secret_list(),
            webhook_secrets=target.webhook_secret_list(), now=time.time(),
        )
    except ValueError as exc:
        return TransportResponse(None, error=f"cannot sign: {exc}")
    if not url:
        return TransportResponse(None, error="target has no URL")
    if sent_headers is not None:
        sent_headers.update(headers)
    return transport.post(url, body=body, headers=headers, timeout=target.timeout_s)


def _text(value: str, limit: int) -> str:
    """A stranger's text made storable: jsonb refuses NUL, and events are kept forever."""
    return value[:limit].replace("\x00", "")


def _excerpt(body: bytes) -> str:
    return _text(body[:EXCERPT_BYTES].decode("utf-8", errors="ignore"), EXCERPT_BYTES)


def _error(response: TransportResponse) -> str:
    if response.status_code is None:
        return _text(response.error, ERROR_CHARS)
    if 200 <= response.status_code < 300:
        return ""
    return f"HTTP {response.status_code}: {_excerpt(response.body)[:300]}".strip()


def deliveries_record(*, sent: Sequence[Sent]) -> list[Delivery]:
    """Record attempts and the states they lead to (SPEC §7 rules); release the leases.

    One transaction for a batch, rows locked in key order. An attempt that ends after its
    delivery left the open statuses (discarded meanwhile, or finished by a worker that took
    over an expired lease) is recorded, changing nothing else. A target that answered 410 is
    paused. Everything but the append (locking rows, clearing leases, building events)
    happens before it, since the append lock is held from the append to the commit; the
    rows returned are read after the commit.
    """
    ids = sorted(s.claim.delivery_id for s in sent)
    with transaction.atomic(durable=True):
        rows = {str(d.pk): d for d in Delivery.objects.select_for_update().filter(pk__in=ids)
                .order_by("pk")}
        targets = Target.objects.select_related("pause").in_bulk(
            {d.target for d in rows.values()}, field_name="name")
        # Only the lease each attempt was sent under: a row whose lease expired and was
        # taken over by another claim keeps that claim's lease.
        for owner in {s.claim.owner for s in sent}:
            mine = [s.claim.delivery_id for s in sent if s.claim.owner == owner]
            Delivery.objects.filter(pk__in=mine, lease_owner=owner).update(
                lease_owner="", lease_expires_at=None)
        appends = [_attempt_append(rows[item.claim.delivery_id],
                                   targets.get(rows[item.claim.delivery_id].target), item)
                   for item in sent]
        appends += _gone_pauses(sent, rows, targets)
        appends += [Append(ev.target_stream(s.target), [ev.event(
            ev.TARGET_BATCH_REFUSED, target=s.target, reason=s.refusal)], Expect.ANY)
            for s in sent if s.target and s.refusal]
        projections.record_batch(appends)  # the batch at once, in this transaction
    _log_outcomes(appends, rows)
    fresh = {str(k): d for k, d in Delivery.objects.in_bulk(ids).items()}
    done = [fresh[s.claim.delivery_id] for s in sent]
    for item, delivery in zip(sent, done, strict=True):
        metrics.DELIVERIES.labels(delivery.target, delivery.status).inc()
        if math.isfinite(item.response.duration_ms):
            metrics.ATTEMPT_SECONDS.labels(delivery.target).observe(
                item.response.duration_ms / 1000)
    return done


def _log_outcomes(appends: Sequence[Append], rows: dict[str, Delivery]) -> None:
    """One console line per delivery that ended undeliverable and per target paused."""
    for append in appends:
        for e in append.events:
            if e.type in (ev.DELIVERY_REJECTED, ev.DELIVERY_DEAD_LETTERED):
                row = rows[e.data["deliveryId"]]
                log.warning("delivery %s to %s key=%s %s: %s", row.pk, row.target,
                            row.idempotency_key, "rejected" if e.type == ev.DELIVERY_REJECTED
                            else "dead-lettered", e.data.get("reason", ""))
            elif e.type == ev.TARGET_PAUSED:
                target_pause_log(name=e.data["target"], actor="", reason=e.data["reason"])


def _gone_pauses(sent: Sequence[Sent], rows: dict[str, Delivery],
                 targets: dict[str, Target]) -> list[Append]:
    """Pause each unpaused target that answered 410 Gone."""
    gone = {t.name: t for item in sent if item.response.status_code == 410
            if (t := targets.get(rows[item.claim.delivery_id].target)) is not None
            and t.paused_at is None}
    pauses = []
    for target in gone.values():
        # The host only: a URL may carry credentials, and events are kept forever.
        host = urlsplit(target.resolved_url()).hostname or "?"
        paused = target_pause_event(name=target.name, actor="",
                                    reason=f"410 Gone from {host}")
        pauses.append(Append(ev.target_stream(target.name), [paused], Expect.ANY))
    return pauses


def _attempt_append(delivery: Delivery, target: Target | None, sent: Sent
                    ) -> Append:
    response = sent.response
    verdict = sent.verdict or retry.classify(response.status_code, response.body)
    error = _text(sent.note, ERROR_CHARS) if sent.note else _error(response)
    attempted = {
        "deliveryId": sent.claim.delivery_id, "number": delivery.attempts + 1,
        "attemptedAtUtc": sent.attempted_at.isoformat(),
        "durationMs": round(response.duration_ms, 3), "statusCode": response.status_code,
        "responseExcerpt": _excerpt(response.body), "error": error,
        "worker": sent.claim.worker or sent.claim.owner, "claim": sent.claim.owner,
        "startedPosition": sent.claim.started_position,
        "responseHeaders": response_headers_recorded(response.headers),
    }
    if sent.request_headers:
        attempted["requestHeaders"] = request_headers_recorded(sent.request_headers)
    if sent.batch_id:
        attempted["batchId"] = sent.batch_id
    if sent.refusal:
        attempted["sentAloneBecause"] = sent.refusal
    follow, outcome = None, verdict.value
    if delivery.status in OPEN_STATUSES:
        try:
            follow, outcome = _follow_up(delivery, target, verdict, response, error)
        except Exception as exc:
            # Whatever the answer held, the attempt is recorded and retried on the plain
            # schedule, never left unrecorded (and resent at each lease expiry) because
            # one of its details could not be understood.
            log.exception("could not interpret the answer to delivery %s", delivery.pk)
            plain = replace(response, headers={})
            follow, outcome = _follow_up(delivery, target, retry.Verdict.RETRY, plain, error)
            attempted["error"] = _text(f"{attempted['error']} (answer not understood: "
                                       f"{exc.__class__.__name__})".strip(), ERROR_CHARS)
    new_events = [ev.event(ev.DELIVERY_ATTEMPTED, outcome=outcome, **attempted)]
    if follow is not None:
        new_events.append(follow)
    return Append(ev.milestone_stream(delivery.idempotency_key), new_events,
                              Expect.ANY)


def _follow_up(delivery: Delivery, target: Target | None, verdict: retry.Verdict,
               response: TransportResponse, error: str) -> tuple[NewEvent, str]:
    d = delivery.pk
    if verdict in (retry.Verdict.DELIVERED, retry.Verdict.DUPLICATE):
        return ev.event(ev.DELIVERY_SUCCEEDED, deliveryId=str(d), status=verdict.value), \
            verdict.value
    if verdict is retry.Verdict.REJECTED:
        return ev.event(ev.DELIVERY_REJECTED, deliveryId=str(d), reason=error), \
            Status.REJECTED.value
    now = timezone.now()
    try:
        schedule = retry.parse_schedule(target.schedule_text() if target else
                                        settings.MILESTONE_RETRY_SCHEDULE)
    except ValueError as exc:
        # Raising here would leave the whole batch unrecorded and resent at every lease
        # expiry; a dead letter naming the bad setting is visible and can be requeued.
        return ev.event(ev.DELIVERY_DEAD_LETTERED, deliveryId=str(d),
                        reason=f"{exc}: {error}"), Status.DEAD_LETTER.value
    retry_after = retry.parse_retry_after(
        {k.lower(): v for k, v in response.headers.items()}.get("retry-after"), now=now)
    due = retry.next_attempt_at(schedule=schedule, attempts_made=delivery.cycle_attempts + 1,
                                now=now, retry_after_s=retry_after)
    if due is None:
        reason = f"gave up after {retry.max_attempts(schedule)} attempt(s): {error}"
        return ev.event(ev.DELIVERY_DEAD_LETTERED, deliveryId=str(d), reason=reason), \
            Status.DEAD_LETTER.value
    return ev.event(ev.DELIVERY_RETRY_SCHEDULED, deliveryId=str(d),
                    nextAttemptAtUtc=js_iso_timestamp(due)), Status.RETRYING.value


def deliveries_record_each(*, sent: Sequence[Sent]) -> list[Delivery]:
    """``deliveries_record``, isolating the attempts from one another: when the batch
    cannot be recorded, each attempt is recorded on its own, and one that still cannot be
    is recorded as a bare failed attempt (its answer left out). Only an attempt that
    cannot be recorded even so is left to its lease's expiry (and logged)."""
    try:
        return deliveries_record(sent=sent)
    except Exception:
        log.exception("recording %d attempts together failed; recording each alone", len(sent))
    done: list[Delivery] = []
    for item in sent:
        try:
            done += deliveries_record(sent=[item])
            continue
        except Exception as exc:
            log.exception("recording the attempt of delivery %s failed", item.claim.delivery_id)
            took = item.response.duration_ms
            bare = TransportResponse(None, error=f"answer could not be recorded "
                                     f"({exc.__class__.__name__})",
                                     duration_ms=took if math.isfinite(took) else 0.0)
        try:
            done += deliveries_record(sent=[replace(item, response=bare)])
        except Exception:
            log.exception("delivery %s left to its lease's expiry", item.claim.delivery_id)
    return done


def deliveries_send(
    *, transport: Transport, limit: int = 100, ids: Sequence[str] | None = None,
    overdue_s: float = 0.0, map_fn: Callable[..., Iterable[list[Sent]]] = map,
    parallel: int = 1,
) -> list[Sent]:
    """Claim what is due now and send it (through ``map_fn``, plain ``map`` by default:
    one request after the other; several due to a target that takes batches go as
    batches); the caller records it."""
    claims = deliveries_claim(limit=limit, ids=ids, overdue_s=overdue_s, parallel=parallel)
    if not claims:
        return []
    jobs = deliveries_load(claims=claims)
    refusing = batch.batch_refusals()
    return [s for sent in map_fn(lambda unit: unit_send(unit, transport),
                                 units(jobs, refusing=refusing)) for s in sent]


def deliveries_run(
    *, transport: Transport, limit: int = 100, ids: Sequence[str] | None = None,
    overdue_s: float = 0.0,
) -> list[Delivery]:
    """Claim, send and record what is due now, in the foreground; return the deliveries."""
    sent = deliveries_send(transport=transport, limit=limit, ids=ids, overdue_s=overdue_s)
    return deliveries_record_each(sent=sent) if sent else []
