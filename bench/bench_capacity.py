"""Capacity: what one milestone costs one PostgreSQL primary, end to end.

``BENCH_CAPACITY_EMITS`` (2,000) milestones go the whole way on the default serving of
``make run`` and its django-q2 worker, on one database (the one-deployment shape):
``POST /api/orchestrator/milestones`` (emit event, outbox delivery), the worker's signed
delivery (attempt events), the ingest (feed event, feed row). Measured across the run:

* ``stored_bytes_per_milestone``: growth of every table of the schema, indexes and TOAST
  included (``pg_total_relation_size``), divided by the milestones;
* ``wal_bytes_per_milestone``: WAL written (``pg_current_wal_lsn``), divided likewise;
  this is what a replica or an archive receives;
* ``events_per_milestone``: rows appended to the event log per milestone, both sides.

docs/ARCHITECTURE.md ("Past one database") turns these into growth per day.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid

from bench.bench_realtime import _only_the_default_target, _operator_token, emit
from bench.servers import free_port, project_server, worker

RATIOS: list[tuple[str, str, str]] = []

EMITS = int(os.environ.get("BENCH_CAPACITY_EMITS", "2000"))
DELIVERED_WITHIN_S = 300.0

_SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm')
"""


def run() -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"MILESTONE_INGEST_URL": f"{base}/internal/milestones/ingest"}
    _only_the_default_target()
    token = _operator_token()
    run_id = uuid.uuid4().hex[:8]
    with project_server(env=env, port=port), worker(env):
        before = _measure()
        _emit(port, token, run_id)
        _wait_delivered(run_id)
        after = _measure()
    n = float(EMITS)
    results = {
        "stored_bytes_per_milestone": (after["bytes"] - before["bytes"]) / n,
        "wal_bytes_per_milestone": (after["wal"] - before["wal"]) / n,
        "events_per_milestone": (after["events"] - before["events"]) / n,
    }
    print(f"   {EMITS} milestones: {results['stored_bytes_per_milestone']:,.0f} B stored, "
          f"{results['wal_bytes_per_milestone']:,.0f} B WAL, "
          f"{results['events_per_milestone']:.2f} events each", flush=True)
    grown = sorted(((after["tables"][t] - before["tables"].get(t, 0.0)) / n, t)
                   for t in after["tables"])
    print("   bytes per milestone by table: " + ", ".join(
        f"{t} {b:,.0f}" for b, t in reversed(grown) if b > 0), flush=True)
    return results


def _emit(port: int, token: str, run_id: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(EMITS):
        body = json.dumps({"milestoneId": f"bench.capacity.{run_id}.{i}",
                           "timestampUtc": "2026-02-28T12:34:56.000Z", "scope": "runtime",
                           "claim": "Capacity measurement.", "riskStatus": "on-track",
                           "evidence": [{"type": "log", "path": "bench/capacity.log",
                                         "summary": "one milestone of the capacity run"}],
                           "nextAction": "Keep measuring."}).encode()
        emit(conn, token, body)
    conn.close()


def _wait_delivered(run_id: str) -> None:
    """Until every milestone of the run is in the feed and its delivery has ended."""
    from django.db import connection

    deadline = time.monotonic() + DELIVERED_WITHIN_S
    pattern = f"bench.capacity.{run_id}.%"
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM feed_item WHERE milestone_id LIKE %s",
                           [pattern])
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM orchestrator_delivery"
                           " WHERE status IN ('pending', 'retrying')")
            open_ = cursor.fetchone()[0]
        if stored == EMITS and open_ == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stored} of {EMITS} milestones reached the feed, "
                               f"{open_} deliveries still open")
        time.sleep(0.2)  # poll interval of the condition above


def _measure() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_SIZES)
        tables = {name: float(size) for name, size in cursor.fetchall()}
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        wal = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM eventstore_event")
        events = cursor.fetchone()[0]
    return {"bytes": sum(tables.values()), "wal": float(wal), "events": float(events),
            "tables": tables}
