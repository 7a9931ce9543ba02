"""Batch ingest, batched appends and backfill (SPEC §10) against ceilings measured in the run.

* ``append_batch_events_per_s``: ``store.append_batch`` of ``BATCH`` new streams of one
  event each per call and transaction (the shape a batch ingest appends: one metadata object
  shared by the call's events, as the request's is), one thread,
  gap safety on (the append lock). ``append_batch_insert_path_per_s`` is the same with the
  COPY path switched off (one ``INSERT ... SELECT`` per call), to show what COPY adds.
* ``pg_multirow_insert_per_s`` / ``pg_copy_per_s``: PostgreSQL's own ceiling via psycopg,
  ``BATCH`` rows of the same columns and payload per statement and transaction (one
  multi-row INSERT, or one COPY), into a scratch table shaped like ``eventstore_event``
  (its unique (stream, version) index included).
* ``batch_single_append_per_s``: ``store.append`` of one event per transaction, the
  single-envelope figure of the event store, in the same run.
* ``bulk_ingest_per_s``: milestones stored per second from signed batches of ``BATCH``
  envelopes over HTTP to the server ``make run`` serves, ``BULK_CONNECTIONS`` at once;
  ``batch_single_ingest_rps`` the single-envelope ingest on the same server, same run.
* ``backfill_100k_s``: wall time of ``manage.py backfill_milestones`` over a reference log
  of ``BACKFILL_LINES`` ``{sentAtUtc, event}`` lines (progress bar and all).

Load from wrk (bench/wrk.py). Every batch is prepared beforehand with keys of its own and
signed (a signature holds for five minutes), and wrk sends each once, so no signing per
request is needed and every item is a new milestone; the run is void if fewer are stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.bench_feed import envelope, signed_ingest
from bench.harness import BASE_DIR
from bench.servers import project_server
from bench.wrk import http_request, write_requests, wrk

RATIOS = [
    ("append_batch_events_per_s", "pg_multirow_insert_per_s", "(share of the multi-row INSERT)"),
    ("append_batch_events_per_s", "pg_copy_per_s", "(share of COPY)"),
    ("append_batch_events_per_s", "batch_single_append_per_s", "(batched vs one per call)"),
    ("append_batch_events_per_s", "append_batch_insert_path_per_s", "(COPY vs INSERT ... SELECT)"),
    ("bulk_ingest_per_s", "batch_single_ingest_rps", "(batched vs single envelopes)"),
]
LIMITS = [
    ("bulk_ingest_per_s", ">=", 10_000.0),
    ("append_batch_events_per_s", ">=", 30_000.0),
    ("backfill_100k_s", "<=", 60.0),
]

BATCH = 1000
CALLS = int(os.environ.get("BENCH_BATCH_CALLS", "40"))
BULK_SECONDS = float(os.environ.get("BENCH_BULK_SECONDS", "10"))
BULK_CONNECTIONS = int(os.environ.get("BENCH_BULK_CONNECTIONS", "4"))
BULK_MAX_PER_S = int(os.environ.get("BENCH_BULK_MAX_PER_S", "30000"))
SINGLE_SECONDS = float(os.environ.get("BENCH_SINGLE_SECONDS", "4"))
SINGLE_MAX_RPS = 10000
BACKFILL_LINES = int(os.environ.get("BENCH_BACKFILL_LINES", "100000"))
WARMUP_S = 1.0


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    results["pg_multirow_insert_per_s"] = _ceiling(copy=False)
    results["pg_copy_per_s"] = _ceiling(copy=True)
    results["append_batch_events_per_s"] = _append_batch()
    results["append_batch_insert_path_per_s"] = _append_batch(copy=False)
    results["batch_single_append_per_s"] = _append_single()
    results.update(_http())
    results["backfill_100k_s"] = _backfill()
    print("   " + ", ".join(f"{k} {v:,.1f}" for k, v in results.items()), flush=True)
    return results


def _event_data(run_id: str, i: int) -> tuple[dict, dict]:
    env = envelope(run_id, i)
    data = {"idempotencyKey": env["idempotencyKey"], "sentAtUtc": env["sentAtUtc"],
            "scheme": "legacy", "event": env["event"]}
    return data, {"remoteAddr": "127.0.0.1", "batchId": f"bench-{run_id}"}


def _append_batch(*, copy: bool = True) -> float:
    from django.db import connection, transaction

    from clawdbot.eventstore import store
    from clawdbot.eventstore.store import Append, Expect, NewEvent

    run_id = uuid.uuid4().hex[:8]
    calls = []
    for c in range(CALLS + 2):
        # One metadata object per call, as a batch ingest gives all its events the
        # request's (the store serialises a shared one once).
        metadata = _event_data(run_id, c * BATCH)[1]
        calls.append([Append(f"bench-batch-{run_id}-{c}-{i}",
                             [NewEvent("bench.appended", _event_data(run_id, c * BATCH + i)[0],
                                       metadata)],
                             Expect.NO_STREAM) for i in range(BATCH)])
    copy_from = store.COPY_FROM_EVENTS
    if not copy:
        store.COPY_FROM_EVENTS = BATCH + 1
    try:
        for appends in calls[:2]:  # warm: connection, prepared statement
            with transaction.atomic():
                store.append_batch(appends)
        started = time.perf_counter()
        for appends in calls[2:]:
            with transaction.atomic():
                outcomes = store.append_batch(appends)
            if any(o.conflict for o in outcomes):
                raise RuntimeError("append_batch: a new stream conflicted; void")
        elapsed = time.perf_counter() - started
    finally:
        store.COPY_FROM_EVENTS = copy_from
        connection.close()
    return CALLS * BATCH / elapsed


def _append_single() -> float:
    from django.db import connection, transaction

    from clawdbot.eventstore import store
    from clawdbot.eventstore.store import Expect, NewEvent

    run_id = uuid.uuid4().hex[:8]
    n = min(CALLS * BATCH, 2000)
    events = [NewEvent("bench.appended", *_event_data(run_id, i)) for i in range(n)]
    started = time.perf_counter()
    for i, event in enumerate(events):
        with transaction.atomic():
            store.append(f"bench-single-{run_id}-{i}", [event], expected_version=Expect.NO_STREAM)
    elapsed = time.perf_counter() - started
    connection.close()
    return n / elapsed


_CEILING_TABLE = """
CREATE TABLE IF NOT EXISTS bench_batch_ceiling (
    position bigserial PRIMARY KEY, stream_id varchar(255) NOT NULL, version integer NOT NULL,
    type varchar(100) NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, version))
"""


def _ceiling(*, copy: bool) -> float:
    """``CALLS`` transactions of ``BATCH`` rows each: one multi-row INSERT or one COPY."""
    import psycopg

    from bench.harness import psycopg_params

    run_id = uuid.uuid4().hex[:8]
    rows = []
    for c in range(CALLS + 2):
        rows.append([(f"ceiling-{run_id}-{c}-{i}", 1, "bench.appended",
                      *(json.dumps(d) for d in _event_data(run_id, c * BATCH + i)))
                     for i in range(BATCH)])
    insert = ("INSERT INTO bench_batch_ceiling (stream_id, version, type, data, metadata) VALUES "
              + ",".join(["(%s, %s, %s, %s, %s)"] * BATCH))
    with psycopg.connect(**psycopg_params()) as conn:
        conn.execute(_CEILING_TABLE)
        conn.commit()

        def one(batch: list[tuple]) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                if copy:
                    with cursor.copy("COPY bench_batch_ceiling (stream_id, version, type, data,"
                                     " metadata) FROM STDIN") as out:
                        for row in batch:
                            out.write_row(row)
                else:
                    cursor.execute(insert, [v for row in batch for v in row], prepare=True)

        conn.autocommit = True
        for batch in rows[:2]:
            one(batch)
        started = time.perf_counter()
        for batch in rows[2:]:
            one(batch)
        elapsed = time.perf_counter() - started
    return CALLS * BATCH / elapsed


def signed_batch(run_id: str, start: int, now: float) -> bytes:
    """One batch request of ``BATCH`` new envelopes, legacy-signed over the whole body."""
    from django.conf import settings

    from clawdbot import contract

    secrets = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)
    payload = {"batchId": f"bench-batch-{run_id}-{start}",
               "sentAtUtc": contract.js_iso_timestamp(now),
               "envelopes": [envelope(run_id, start + i) for i in range(BATCH)]}
    body = contract.envelope_bytes(payload)
    headers = contract.signed_headers(body=body, idempotency_key=payload["batchId"],
                                      legacy_secrets=secrets, webhook_secrets=[], now=now,
                                      payload=payload)
    return http_request("POST", "/internal/milestones/ingest/batch", body=body,
                        headers={"Content-Type": "application/json", **headers})


def _http() -> dict[str, float]:
    from bench.bench_feed import _feed_count

    figures: dict[str, float] = {}
    run_id, now = uuid.uuid4().hex[:8], time.time()
    batches = int(BULK_MAX_PER_S * (BULK_SECONDS + WARMUP_S + 2) / BATCH) + BULK_CONNECTIONS
    bulk = write_requests(signed_batch(run_id, b * BATCH, now) for b in range(batches))
    single = write_requests(signed_ingest(envelope(f"s{run_id}", i), now)
                            for i in range(int(SINGLE_MAX_RPS * (SINGLE_SECONDS + 2))))
    warm = write_requests(signed_ingest(envelope(f"w{run_id}", i), now)
                          for i in range(int(SINGLE_MAX_RPS * (WARMUP_S + 1))))
    try:
        with project_server() as url:
            wrk(url, warm, connections=16, duration_s=WARMUP_S)  # none sent again
            result = wrk(url, single, connections=16, duration_s=SINGLE_SECONDS)
            if result.errors:
                raise RuntimeError(f"single ingest: {result.errors} errors; void")
            figures["batch_single_ingest_rps"] = result.rps
            before = _feed_count()
            result = wrk(url, bulk, connections=BULK_CONNECTIONS,
                         duration_s=BULK_SECONDS + WARMUP_S, timeout_s=30)
            stored = _feed_count() - before
            if result.errors or stored < result.requests * BATCH:
                raise RuntimeError(f"bulk ingest: {result.errors} errors, {result.requests} "
                                   f"batches answered, {stored} milestones stored; void")
            if result.requests >= batches:
                raise RuntimeError("bulk ingest: the prepared batches ran out; raise "
                                   "BENCH_BULK_MAX_PER_S")
            figures["bulk_ingest_per_s"] = result.rps * BATCH
            figures["bulk_ingest_p99_ms"] = result.p99_ms
    finally:
        bulk.unlink()
        single.unlink()
        warm.unlink()
    return figures


def reference_log(path: Path, lines: int) -> None:
    """A reference log of ``lines`` ``{sentAtUtc, event}`` lines with new milestoneIds."""
    run_id = uuid.uuid4().hex[:8]
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            env = envelope(run_id, i)
            env["event"]["milestoneId"] = f"bench.backfill.{run_id}.{i}"
            out.write(json.dumps({"sentAtUtc": env["sentAtUtc"], "event": env["event"]},
                                 separators=(",", ":")) + "\n")


def _backfill() -> float:
    """``manage.py backfill_milestones`` of ``BACKFILL_LINES`` lines, scaled to 100,000."""
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        log = Path(tmp) / "reference.jsonl"
        reference_log(log, BACKFILL_LINES)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(BASE_DIR / "manage.py"),
                               "backfill_milestones", str(log)], cwd=BASE_DIR,
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    if done.returncode or f"{BACKFILL_LINES} new milestone(s) emitted" not in done.stdout:
        raise RuntimeError(f"backfill failed ({done.returncode}): {done.stderr[-2000:]}"
                           f"{done.stdout[-500:]}")
    return elapsed * 100_000 / BACKFILL_LINES
