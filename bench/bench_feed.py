"""Feed side: ingest and feed throughput against bare-Django baselines on the same server.

* ``ingest_rps``/``ingest_p99_ms`` (64 connections; ``_16c`` at 16): signed legacy
  envelopes with unique keys through the full ingest (verify, validate, event + projection).
* ``baseline_bare_insert_rps``: HMAC + json.loads + one INSERT in a minimal Django view.
* ``feed_latest_rps``/``feed_latest_p99_ms`` (16 connections, limit=50) over at least
  ``BENCH_FEED_ROWS`` stored milestones, against ``baseline_feed_pgjson_rps``: the latest
  50 rows serialised by PostgreSQL with json_agg.

``BENCH_FEED_STACK`` picks the server (default: what ``make run`` serves), the load
generator (bench/loadgen.py) runs on the same machine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid

from bench.loadgen import LoadResult, http_request, load
from bench.servers import server

RATIOS = [
    ("ingest_rps", "baseline_bare_insert_rps", ">= 0.8"),
    ("ingest_rps_16c", "baseline_bare_insert_rps_16c", ">= 0.8"),
    ("feed_latest_rps", "baseline_feed_pgjson_rps", ">= 0.9 (p99 <= 25 ms)"),
]

DURATION_S = float(os.environ.get("BENCH_FEED_SECONDS", "8"))
WARMUP_S = 1.0
FEED_ROWS = int(os.environ.get("BENCH_FEED_ROWS", "1000000"))
PREPARED_PER_S = int(os.environ.get("BENCH_FEED_MAX_RPS", "4000"))


def default_stack() -> str:
    from clawdbot.serve import web_stack

    return web_stack()


def run() -> dict[str, float]:
    stack = os.environ.get("BENCH_FEED_STACK") or default_stack()
    print(f"   server: {stack}", flush=True)
    results: dict[str, float] = {}
    _create_bare_table()
    with server(stack) as (host, port):
        for connections in (16, 64):
            suffix = f"_{connections}c"
            bare = load(host, port, iter(_bare_requests()), connections=connections,
                        duration_s=DURATION_S, warmup_s=WARMUP_S)
            ingest = load(host, port, iter(_ingest_requests()), connections=connections,
                          duration_s=DURATION_S, warmup_s=WARMUP_S)
            _check(ingest, "ingest")
            results["baseline_bare_insert_rps" + suffix] = bare.rps
            results["ingest_rps" + suffix] = ingest.rps
            results["ingest_p99_ms" + suffix] = ingest.p99_ms
            print(f"   {connections} connections: ingest {ingest.rps:.0f} req/s "
                  f"(p99 {ingest.p99_ms:.0f} ms), bare insert {bare.rps:.0f} req/s", flush=True)
        for key in ("baseline_bare_insert_rps", "ingest_rps", "ingest_p99_ms"):
            results[key] = results[key + "_64c"]
        results["feed_rows"] = _seed_feed(FEED_ROWS)
        feed = load(host, port, lambda: _LATEST, connections=16, duration_s=DURATION_S)
        pgjson = load(host, port, lambda: _PGJSON, connections=16, duration_s=DURATION_S)
        _check(feed, "feed")
        results["feed_latest_rps"] = feed.rps
        results["feed_latest_p99_ms"] = feed.p99_ms
        results["baseline_feed_pgjson_rps"] = pgjson.rps
        results["baseline_feed_pgjson_p99_ms"] = pgjson.p99_ms
    return results


_LATEST = http_request("GET", "/api/milestones/latest?limit=50")
_PGJSON = http_request("GET", "/bench/feed-pgjson")


def _check(result: LoadResult, what: str) -> None:
    if result.non_2xx:
        raise RuntimeError(f"{what}: responses by status {result.statuses}; figures are void")


def _count() -> int:
    return int(PREPARED_PER_S * (DURATION_S + WARMUP_S))


def _envelope(run_id: str, i: int) -> dict:
    return {
        "idempotencyKey": f"bench-{run_id}-{i}",
        "sentAtUtc": "2026-02-28T12:34:56.000Z",
        "event": {
            "milestoneId": f"bench.ingest.{i}",
            "timestampUtc": "2026-02-28T12:34:56.000Z",
            "scope": "runtime",
            "claim": "Benchmark milestone.",
            "evidence": [{"type": "log", "path": "bench/run.log", "summary": "load test"}],
            "riskStatus": "on-track",
            "nextAction": "Keep measuring.",
            "source": "orchestrator",
        },
    }


def _ingest_requests() -> list[bytes]:
    from django.conf import settings

    from clawdbot import contract

    secrets = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)
    run_id, now = uuid.uuid4().hex[:8], time.time()
    requests = []
    for i in range(_count()):
        envelope = _envelope(run_id, i)
        body = contract.envelope_bytes(envelope)
        headers = contract.signed_headers(body=body, idempotency_key=envelope["idempotencyKey"],
                                          legacy_secrets=secrets, webhook_secrets=[], now=now,
                                          payload=envelope)
        requests.append(http_request("POST", "/internal/milestones/ingest", body=body,
                                     headers=headers))
    return requests


def _bare_requests() -> list[bytes]:
    from django.conf import settings

    secret = settings.MILESTONE_SIGNING_SECRET.split(",")[0].encode()
    run_id = uuid.uuid4().hex[:8]
    requests = []
    for i in range(_count()):
        body = json.dumps(_envelope(run_id, i), separators=(",", ":")).encode()
        signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
        requests.append(http_request("POST", "/bench/bare-insert", body=body, headers={
            "content-type": "application/json", "x-bench-signature": signature}))
    return requests


def _create_bare_table() -> None:
    from django.db import connection

    from bench.baseline import CREATE_BARE_TABLE

    with connection.cursor() as cursor:
        cursor.execute(CREATE_BARE_TABLE)


_SEED_EVENTS = """
INSERT INTO eventstore_event (stream_id, version, type, data, metadata)
SELECT 'feed-ingest-seed-' || g, 1, 'feed.milestone_accepted', jsonb_build_object(
    'idempotencyKey', 'seed-' || g, 'sentAtUtc', NULL, 'scheme', 'legacy',
    'event', jsonb_build_object(
        'milestoneId', 'bench.seed.' || g,
        'timestampUtc', to_char(timestamp '2024-01-01' + g * interval '7 seconds',
                                'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'scope', (ARRAY['runtime', 'billing', 'deploy'])[1 + mod(g, 3)],
        'claim', 'Seeded milestone number ' || g || '.',
        'evidence', jsonb_build_array(jsonb_build_object(
            'type', 'log', 'path', 'bench/seed.log', 'summary', 'seeded for the benchmark')),
        'riskStatus', (ARRAY['on-track', 'at-risk', 'blocked', 'completed'])[1 + mod(g, 4)],
        'nextAction', 'Keep going.', 'source', 'orchestrator')), '{}'::jsonb
FROM generate_series(%s, %s) g
"""
# The feed projection of the seeded events, in SQL: same rows FeedProjection.apply would write.
_SEED_ITEMS = """
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope, risk_status,
                       source, event, item, received_at)
SELECT position, data->>'idempotencyKey', data->'event'->>'milestoneId',
       (data->'event'->>'timestampUtc')::timestamptz, data->'event'->>'scope',
       data->'event'->>'riskStatus', data->'event'->>'source', data->'event',
       data->'event' || jsonb_build_object(
           'position', position, 'idempotencyKey', data->>'idempotencyKey',
           'receivedAtUtc', to_char(recorded_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
       recorded_at
FROM eventstore_event
WHERE type = 'feed.milestone_accepted' AND stream_id LIKE 'feed-ingest-seed-%%'
"""


def _seed_feed(rows: int) -> float:
    """Store ``rows`` more milestones (events and feed rows); return the feed's size."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SEED_EVENTS, [1, rows])
        cursor.execute(_SEED_ITEMS)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE feed_item")
        cursor.execute("SELECT count(*) FROM feed_item")
        total = cursor.fetchone()[0]
    print(f"   seeded {rows:,} milestones in {time.perf_counter() - started:.0f}s", flush=True)
    return float(total)
