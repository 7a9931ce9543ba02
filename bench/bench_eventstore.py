"""Event store: gap-safe appends against a plain INSERT loop and the eventsourcing package.

* ``append_events_per_s_{1,4}w``: ``store.append`` of one event per transaction through the
  Django connection, 1 and 4 threads, gap safety on (the append lock).
* ``baseline_insert_per_s_{1,4}w``: a plain psycopg INSERT loop into a scratch table, one
  row per transaction, autocommit: the floor any event store pays.
* ``peer_eventsourcing_per_s_4w``: the eventsourcing package's PostgreSQL application
  recorder (its table lock is its gap safety), 4 threads, same database.
* ``rebuild_events_per_s``: ``projections.rebuild`` of every projection over a log of
  ``REBUILD_EVENTS`` events.
"""

from __future__ import annotations

import json
import os
import time
import uuid

RATIOS = [
    ("append_events_per_s_4w", "peer_eventsourcing_per_s_4w", ">= 3"),
    ("append_events_per_s_4p", "peer_eventsourcing_per_s_4p", "(4 processes)"),
    ("append_events_per_s_4w", "baseline_insert_per_s_4w", "(share of the floor)"),
    ("append_events_per_s_1w", "baseline_insert_per_s_1w", "(share of the floor)"),
]

PER_WORKER = int(os.environ.get("BENCH_APPENDS_PER_WORKER", "2000"))
REBUILD_EVENTS = int(os.environ.get("BENCH_REBUILD_EVENTS", "200000"))
PAYLOAD = {"milestoneId": "runtime.bench", "claim": "Benchmark event.", "n": 0}


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    for workers in (1, 4):
        results[f"baseline_insert_per_s_{workers}w"] = _baseline(workers)
        results[f"append_events_per_s_{workers}w"] = _append(workers)
    results["peer_eventsourcing_per_s_4w"] = _peer(4)
    results["append_events_per_s_4p"] = _append(4, processes=True)
    results["peer_eventsourcing_per_s_4p"] = _peer(4, processes=True)
    results["rebuild_events_per_s"] = _rebuild()
    return results


def _append(workers: int, processes: bool = False) -> float:
    from django.db import connections, transaction

    from bench.harness import in_processes, in_threads
    from clawdbot.eventstore import store
    from clawdbot.eventstore.store import Expect, NewEvent

    run_id = uuid.uuid4().hex[:8]

    def work(worker: int, i: int) -> None:
        with transaction.atomic():
            store.append(
                f"bench-{run_id}-{worker}-{i}",
                [NewEvent("bench.appended", PAYLOAD)],
                expected_version=Expect.NO_STREAM,
            )
        if i == PER_WORKER - 1:
            connections.close_all()

    return (in_processes if processes else in_threads)(workers, PER_WORKER, work)


def _baseline(workers: int) -> float:
    import psycopg

    from bench.harness import in_threads, psycopg_params

    params = psycopg_params()
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_plain_insert"
            " (id bigserial PRIMARY KEY, stream text NOT NULL, data jsonb NOT NULL)"
        )
    conns = [psycopg.connect(**params, autocommit=True) for _ in range(workers)]
    body = json.dumps(PAYLOAD)

    def work(worker: int, i: int) -> None:
        conns[worker].execute(
            "INSERT INTO bench_plain_insert (stream, data) VALUES (%s, %s)", (f"{worker}-{i}", body)
        )

    try:
        return in_threads(workers, PER_WORKER, work)
    finally:
        for conn in conns:
            conn.close()


def _peer(workers: int, processes: bool = False) -> float:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    from bench.harness import in_processes, in_threads, psycopg_params

    params = psycopg_params()
    state = json.dumps(PAYLOAD).encode()
    recorders: dict[int, PostgresApplicationRecorder] = {}

    def recorder(pool_size: int, create: bool = False) -> PostgresApplicationRecorder:
        datastore = PostgresDatastore(
            dbname=str(params["dbname"]),
            host=str(params.get("host") or "127.0.0.1"),
            port=str(params.get("port") or 5432),
            user=str(params.get("user") or "postgres"),
            password=str(params.get("password") or ""),
            pool_size=pool_size,
        )
        made = PostgresApplicationRecorder(datastore, events_table_name="bench_peer_events")
        if create:
            made.create_table()
        return made

    def work(worker: int, i: int) -> None:
        target = recorders[worker] if processes else shared
        target.insert_events([StoredEvent(uuid.uuid4(), 1, "bench.appended", state)])

    recorder(1, create=True).datastore.close()
    if processes:
        return in_processes(workers, PER_WORKER, work,
                            setup=lambda w: recorders.__setitem__(w, recorder(1)))
    shared = recorder(workers)
    try:
        return in_threads(workers, PER_WORKER, work)
    finally:
        shared.datastore.close()


def _rebuild() -> float:
    from django.db import connection

    from clawdbot.eventstore import projections

    _seed_log(REBUILD_EVENTS)
    started = time.perf_counter()
    replayed = sum(projections.rebuild(p.name) for p in projections.registered())
    elapsed = time.perf_counter() - started
    connection.close()
    return replayed / elapsed


def _seed_log(total: int) -> None:
    """Fill the log up to ``total`` events with SQL (the append path is measured above).

    Streams of 10 events each, with the payload shape of a real milestone.
    """
    from django.db import connection

    from clawdbot.eventstore import store

    missing = total - store.count()
    if missing <= 0:
        return
    run_id = uuid.uuid4().hex[:8]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO eventstore_event (stream_id, version, type, data, metadata)
            SELECT %s || (n / 10), n %% 10 + 1, 'bench.appended',
                   jsonb_build_object('milestoneId', 'runtime.bench', 'n', n,
                                      'claim', 'Benchmark event.'), '{}'::jsonb
            FROM generate_series(0, %s - 1) AS n
            """,
            [f"seed-{run_id}-", missing],
        )
