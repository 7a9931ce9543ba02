"""``python -m bench.profile ingest-cpu | bulk-cpu | realtime``: where the CPU of a benchmark goes.

* ``ingest-cpu``: the 64-connection signed ingest under wrk against ``make run``'s web
  server with 1 and then 2 processes; prints the CPU per request spent in the web
  processes and in PostgreSQL (psutil, around an 8 s run after a 3 s warm-up).
* ``bulk-cpu``: ``bench_batch``'s bulk load (signed batches of 1,000 over wrk) against
  ``make run``'s web server; prints the CPU per batch in each web process and PostgreSQL.
* ``realtime``: the commit-to-client run (1,000 sockets, 100 ingests/s offered) with
  py-spy recording every web process for 12 s; writes ``/tmp/realtime-<pid>.txt`` (raw
  collapsed stacks) and prints each process's heaviest frames.

Both on a fresh scratch database, as ``make bench`` runs them.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bench import harness


def _web_pids(port: str) -> list[int]:
    """The uvicorn worker processes serving ``port`` (or the one process, unforked)."""
    servers = [p for p in psutil.process_iter(["cmdline"])
               if "uvicorn" in " ".join(p.info["cmdline"] or [])
               and port in " ".join(p.info["cmdline"] or [])]
    workers = [c for s in servers for c in s.children()
               if "resource_tracker" not in " ".join(c.cmdline())]
    return [p.pid for p in (workers or servers)]


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def ingest_cpu() -> None:
    from bench.bench_feed import _ingest_requests
    from bench.servers import project_server
    from bench.wrk import write_requests, wrk

    for workers in (1, 2):
        with project_server(workers=workers) as url:
            requests = write_requests(_ingest_requests())
            wrk(url, requests, connections=64, duration_s=3)
            web = [psutil.Process(p) for p in _web_pids(url.rsplit(":", 1)[1])]
            postgres = [p for p in psutil.process_iter(["name"])
                        if "postgres" in (p.info["name"] or "")]
            web_before, pg_before = _cpu(web), _cpu(postgres)
            result = wrk(url, requests, connections=64, duration_s=8)
            served = result.rps * 8
            print(f"{workers} web process(es): {result.rps:,.0f} req/s; CPU per request: "
                  f"web {1000 * (_cpu(web) - web_before) / served:.2f} ms, PostgreSQL "
                  f"{1000 * (_cpu(postgres) - pg_before) / served:.2f} ms", flush=True)
            requests.unlink()


def bulk_cpu() -> None:
    """CPU per 1,000-envelope batch (``bench_batch``'s bulk load), web and PostgreSQL."""
    import uuid

    from bench.bench_batch import BATCH, BULK_CONNECTIONS, signed_batch
    from bench.servers import project_server
    from bench.wrk import write_requests, wrk

    run_id, now, seconds = uuid.uuid4().hex[:8], time.time(), 8
    # Every batch once: the warm-up's own, then the measured run's (a batch sent again
    # would be all duplicates, another workload).
    warm = write_requests(signed_batch(f"w{run_id}", b * BATCH, now) for b in range(80))
    requests = write_requests(signed_batch(run_id, b * BATCH, now) for b in range(400))
    try:
        with project_server() as url:
            wrk(url, warm, connections=BULK_CONNECTIONS, duration_s=2, timeout_s=30)
            web = [psutil.Process(p) for p in _web_pids(url.rsplit(":", 1)[1])]
            postgres = [p for p in psutil.process_iter(["name"])
                        if "postgres" in (p.info["name"] or "")]
            web_before, pg_before = [_cpu([p]) for p in web], _cpu(postgres)
            result = wrk(url, requests, connections=BULK_CONNECTIONS, duration_s=seconds,
                         timeout_s=30)
            served = result.requests
            shares = ", ".join(f"{1000 * (_cpu([p]) - b) / served:.1f}"
                               for p, b in zip(web, web_before, strict=True))
            print(f"{result.rps * BATCH:,.0f} milestones/s; CPU per batch of {BATCH}: web "
                  f"{1000 * (_cpu(web) - sum(web_before)) / served:.1f} ms ({shares} by "
                  f"process), PostgreSQL {1000 * (_cpu(postgres) - pg_before) / served:.1f} ms",
                  flush=True)
    finally:
        warm.unlink()
        requests.unlink()


def _heaviest(path: Path, top: int = 12) -> tuple[list[tuple[float, str]],
                                                 list[tuple[float, str]]]:
    """The frames with the most samples under them (below the server's own frames, which
    hold every sample), and the source lines where the samples were taken."""
    total, inclusive, leaves = 0, collections.Counter[str](), collections.Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaves[frames[-1]] += n
        for frame in dict.fromkeys(f.split(" (")[0] for f in frames):
            inclusive[frame] += n
    root = max(inclusive.values(), default=0)
    under = [(100 * n / max(total, 1), f) for f, n in inclusive.most_common() if n < root]
    return under[:top], [(100 * n / max(total, 1), f) for f, n in leaves.most_common(8)]


def realtime() -> None:
    from bench import bench_realtime
    from bench.servers import free_port, project_server

    port = free_port()
    with project_server(port=port):
        pids = _web_pids(str(port))
        outputs = {pid: Path(f"/tmp/realtime-{pid}.txt") for pid in pids}

        def record(pid: int) -> None:
            subprocess.run([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                            str(pid), "-d", "12", "-r", "100", "-f", "raw", "--nonblocking",
                            "-o", str(outputs[pid])], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        with bench_realtime._clients(port, bench_realtime.SOCKETS, 100):
            spies = [threading.Thread(target=record, args=(pid,)) for pid in pids]
            for spy in spies:
                spy.start()
            started = time.monotonic()
            sent = bench_realtime._paced_ingests(port, 1000, bench_realtime.RATE_PER_S)
            print(f"{sent / (time.monotonic() - started):.0f} ingests/s reached", flush=True)
            for spy in spies:
                spy.join()
    for pid, output in outputs.items():
        if output.exists() and output.stat().st_size:
            frames, lines = _heaviest(output)
            print(f"web process {pid} ({output}), samples under each frame:")
            for share, frame in frames:
                print(f"  {share:5.1f} %  {frame}")
            print("  taken at:")
            for share, frame in lines:
                print(f"  {share:5.1f} %  {frame}")


def main() -> None:
    commands = {"ingest-cpu": ingest_cpu, "bulk-cpu": bulk_cpu, "realtime": realtime}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: python -m bench.profile {{{'|'.join(commands)}}}")
    harness.prepare_database()
    commands[sys.argv[1]]()


if __name__ == "__main__":
    main()
