"""What every benchmark shares: a scratch database, timing, and the results table.

Benchmarks run against a database of their own, ``clawdbot_bench``, on the same server the
project uses (the embedded one, or ``DATABASE_URL``'s), dropped and migrated afresh at the
start of each benchmark. Each benchmark module exposes ``run() -> dict[str, float]`` and a list
``RATIOS`` of ``(measured, baseline, target)`` rows printed under the table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DB = "clawdbot_bench"


def prepare_database(name: str = BENCH_DB) -> None:
    """Point this process (and its children) at a fresh, migrated scratch database."""
    os.environ["CLAWDBOT_DB_NAME"] = name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clawdbot.settings")
    import django

    django.setup()
    import psycopg
    import psycopg.sql
    from django.conf import settings

    if settings.EMBEDDED_DATABASE:
        from clawdbot.embedded_pg import server

        server.ensure_running(settings.VAR_DIR)
    from django.db import connections

    connections.close_all()  # this process's connection to the previous scratch database
    with psycopg.connect(**psycopg_params("postgres", owner=True), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "-v", "0"],
        check=True,
        cwd=BASE_DIR,
    )
    # The benchmarks' own scratch tables (plain-INSERT floors, the baseline views' table,
    # the eventsourcing peer's) are created by the role the app runs as; in this scratch
    # database only, that role may create tables.
    runtime = psycopg_params(name)["user"]
    with psycopg.connect(**psycopg_params(name, owner=True), autocommit=True) as owner:
        owner.execute(psycopg.sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(
            psycopg.sql.Identifier(str(runtime))))


def psycopg_params(dbname: str = BENCH_DB, *, owner: bool = False) -> dict[str, object]:
    """Connection keywords for a plain psycopg connection to the benchmark database, as the
    app's runtime role or (``owner``) as the role that may create databases."""
    from django.db import connection

    from clawdbot.dbroles import owner_connection

    if owner:
        with owner_connection():
            params = connection.get_connection_params()
    else:
        params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["dbname"] = dbname
    return params


def in_threads(workers: int, per_worker: int, work: Callable[[int, int], None]) -> float:
    """Run ``work(worker, i)`` ``per_worker`` times in each of ``workers`` threads.

    Returns operations per second over the wall time from a common start line.
    """
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []

    def loop(worker: int) -> None:
        barrier.wait()
        try:
            for i in range(per_worker):
                work(worker, i)
        except BaseException as exc:  # reported below, the run is void
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return workers * per_worker / elapsed


def print_table(results: dict[str, float], ratios: list[tuple[str, str, str]],
                limits: list[tuple[str, str, float]] = ()) -> None:  # type: ignore[assignment]
    width = max(len(k) for k in results) if results else 10
    print(f"\n{'figure':<{width}}  {'value':>14}")
    for key, value in results.items():
        print(f"{key:<{width}}  {value:>14,.2f}")
    if ratios:
        print(f"\n{'ratio':<{width + 20}}  {'value':>8}  target")
        for measured, baseline, target in ratios:
            if measured in results and baseline in results and results[baseline]:
                label = f"{measured} / {baseline}"
                ratio = results[measured] / results[baseline]
                print(f"{label:<{width + 20}}  {ratio:>8.2f}  {target}{_verdict(ratio, target)}")
    for key, op, bound in limits:
        if key in results:
            met = results[key] <= bound if op == "<=" else results[key] >= bound
            print(f"{key:<{width + 20}}  {results[key]:>8.1f}  {op} {bound:g}: "
                  f"{'met' if met else 'MISSED'}")


def _verdict(ratio: float, target: str) -> str:
    """': met' / ': MISSED' for a target written as '>= 0.8'; nothing for a note."""
    op, _, bound = target.partition(" ")
    try:
        value = float(bound)
    except ValueError:
        return ""
    if op not in (">=", "<="):
        return ""
    met = ratio >= value if op == ">=" else ratio <= value
    return ": met" if met else ": MISSED"


def in_processes(
    workers: int,
    per_worker: int,
    work: Callable[[int, int], None],
    setup: Callable[[int], None] | None = None,
) -> float:
    """Like ``in_threads`` but each worker is a forked process (no shared interpreter lock).

    Database connections are closed before forking; each child opens its own. ``setup``
    runs in each child before the start line.
    """
    import multiprocessing

    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers + 1, timeout=60)
    failures = ctx.Queue()

    def loop(worker: int) -> None:
        try:
            if setup:
                setup(worker)
            barrier.wait()
            for i in range(per_worker):
                work(worker, i)
        except BaseException as exc:
            failures.put(repr(exc))
            raise
        finally:
            connections.close_all()

    procs = [ctx.Process(target=loop, args=(w,)) for w in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"a benchmark worker failed: {failures.get(timeout=5)}")
    return workers * per_worker / elapsed
