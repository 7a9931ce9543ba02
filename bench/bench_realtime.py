"""Realtime: WebSocket fan-out, commit-to-client and emit-to-browser latency.

All against the default serving of ``make run`` (``bench.servers.project_server``) and,
for the emit, its django-q2 worker, on the scratch database. WebSocket clients are
``bench/wsclient.py`` (one process, raw asyncio protocol; its CPU time is reported).

* ``ws_fanout_1000_p99_ms`` / ``_max_ms``: 1,000 live sockets; ``BENCH_WS_FANOUT`` (5)
  ingests 1.5 s apart; for each socket and ingest, from just before the POST to the
  frame's arrival, until the last socket has it.
* ``ws_commit_to_client_p99_ms`` / ``_p50_ms``: 100 ingests/s for ``BENCH_WS_SECONDS``
  (10) with 1,000 sockets connected; on 100 sampled sockets, from the milestone's
  ``receivedAtUtc`` (the database's clock at the append, before the commit, in whole
  milliseconds) to the frame's arrival. So this overstates commit-to-client slightly.
* ``emit_to_browser_p50_ms`` / ``_p99_ms``: ``BENCH_E2B_EMITS`` (40) emits through
  ``POST /api/orchestrator/milestones`` (operator token), 0.25 s apart; from just before
  the POST to the arrival on a WebSocket client, through the outbox delivery and the ingest.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from bench.bench_feed import envelope, signed_ingest
from bench.harness import BASE_DIR
from bench.servers import free_port, project_server, worker

RATIOS: list[tuple[str, str, str]] = []
LIMITS = [
    ("ws_fanout_1000_p99_ms", "<=", 500.0),
    ("ws_commit_to_client_p99_ms", "<=", 100.0),
    ("emit_to_browser_p50_ms", "<=", 100.0),
    ("emit_to_browser_p99_ms", "<=", 500.0),
]

SOCKETS = int(os.environ.get("BENCH_WS_SOCKETS", "1000"))
FANOUT_INGESTS = int(os.environ.get("BENCH_WS_FANOUT", "5"))
RATE_PER_S = 100
RATE_SECONDS = float(os.environ.get("BENCH_WS_SECONDS", "10"))
E2B_EMITS = int(os.environ.get("BENCH_E2B_EMITS", "40"))


def run() -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"MILESTONE_INGEST_URL": f"{base}/internal/milestones/ingest"}
    _only_the_default_target()
    results: dict[str, float] = {}
    with project_server(env=env, port=port), worker(env):
        results.update(_fanout(port))
        results.update(_commit_to_client(port))
        results.update(_emit_to_browser(port))
    return results


@contextmanager
def _clients(port: int, count: int, sample: int) -> Iterator[dict[str, Any]]:
    """Run bench/wsclient.py with ``count`` sockets; yields its report once stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.wsclient", f"ws://127.0.0.1:{port}/ws/milestones/",
         str(count), str(sample)],
        cwd=BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    report: dict[str, Any] = {}
    try:
        if process.stdout.readline().strip() != "READY":
            raise RuntimeError(f"the WebSocket client did not connect (exit {process.wait()})")
        yield report
        process.stdin.write("STOP\n")
        process.stdin.flush()
        report.update(json.loads(process.stdout.readline()))
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _post(conn: http.client.HTTPConnection, raw: bytes) -> int:
    """Send a prepared raw request on a keep-alive connection; return the status."""
    if conn.sock is None:
        conn.connect()
    assert conn.sock is not None
    conn.sock.sendall(raw)
    response = http.client.HTTPResponse(conn.sock)
    response.begin()
    response.read()
    return response.status


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def _fanout(port: int) -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    sent: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    with _clients(port, SOCKETS, 0) as report:
        for i in range(FANOUT_INGESTS):
            raw = signed_ingest(envelope(f"fan{run_id}", i), time.time())
            sent.append(time.time())
            if _post(conn, raw) != 200:
                raise RuntimeError("fan-out ingest refused")
            time.sleep(1.5)  # pacing between milestones, not a wait for a condition
    conn.close()
    delays = []
    missing = 0
    for arrivals in report["arrivals"]:
        missing += max(0, FANOUT_INGESTS - len(arrivals))
        delays += [(a - s) * 1000 for a, s in zip(arrivals, sent, strict=False)]
    print(f"   fan-out: {len(delays):,} arrivals, {missing} missing, client CPU "
          f"{report['cpu_s']:.1f} s", flush=True)
    return {"ws_fanout_1000_p99_ms": _pct(delays, 0.99), "ws_fanout_1000_p50_ms":
            _pct(delays, 0.50), "ws_fanout_1000_max_ms": max(delays, default=float("nan")),
            "ws_fanout_missing": float(missing), "ws_client_cpu_s_fanout": report["cpu_s"]}


def _paced_ingests(port: int, count: int, rate: float, threads: int = 4) -> int:
    """Send ``count`` ingests at ``rate`` per second from ``threads`` connections."""
    run_id = uuid.uuid4().hex[:8]
    now = time.time()
    raws = [signed_ingest(envelope(f"rate{run_id}", i), now) for i in range(count)]
    start = time.monotonic() + 0.2
    failures: list[int] = []

    def sender(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for k in range(offset, count, threads):
            pause = start + k / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # the schedule: request k leaves at k / rate seconds
            status = _post(conn, raws[k])
            if status != 200:
                failures.append(status)
        conn.close()

    workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if failures:
        raise RuntimeError(f"paced ingests refused: {failures[:5]}")
    return count


def _commit_to_client(port: int) -> dict[str, float]:
    sample = min(100, SOCKETS)
    with _clients(port, SOCKETS, sample) as report:
        started = time.monotonic()
        sent = _paced_ingests(port, int(RATE_PER_S * RATE_SECONDS), RATE_PER_S)
        achieved = sent / (time.monotonic() - started)
        time.sleep(2)  # let the last frames arrive before the report is taken
    delays = [(arrival - _epoch(received)) * 1000
              for _, received, _, arrival in report["messages"]]
    expected = sample * sent
    print(f"   commit-to-client: {sent} ingests at {achieved:.0f}/s, {len(delays):,} of "
          f"{expected:,} sampled frames, client CPU {report['cpu_s']:.1f} s", flush=True)
    return {"ws_commit_to_client_p99_ms": _pct(delays, 0.99),
            "ws_commit_to_client_p50_ms": _pct(delays, 0.50),
            "ws_commit_to_client_ingest_rate": achieved,
            "ws_commit_to_client_missing": float(expected - len(delays)),
            "ws_client_cpu_s_commit": report["cpu_s"]}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _emit_to_browser(port: int) -> dict[str, float]:
    token = _operator_token()
    run_id = uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    with _clients(port, 1, 1) as report:
        for i in range(E2B_EMITS):
            milestone_id = f"bench.e2b.{run_id}.{i}"
            body = json.dumps({"milestoneId": milestone_id,
                               "timestampUtc": "2026-02-28T12:34:56.000Z", "scope": "bench",
                               "claim": "End to end.", "riskStatus": "on-track",
                               "evidence": [{"type": "metric", "path": "bench",
                                             "summary": "emit to browser"}],
                               "nextAction": "Measure."}).encode()
            sent[milestone_id] = time.time()
            emit(conn, token, body)
            time.sleep(0.25)  # pacing between emits
        _settle(report_wait_s=5)
    conn.close()
    arrived = {mid: arrival for _, _, mid, arrival in report["messages"] if mid in sent}
    delays = [(arrived[mid] - t) * 1000 for mid, t in sent.items() if mid in arrived]
    print(f"   emit-to-browser: {len(delays)} of {len(sent)} arrived", flush=True)
    return {"emit_to_browser_p50_ms": statistics.median(delays) if delays else float("nan"),
            "emit_to_browser_p99_ms": _pct(delays, 0.99),
            "emit_to_browser_missing": float(len(sent) - len(delays))}


def emit(conn: http.client.HTTPConnection, token: str, body: bytes) -> None:
    """One milestone through the orchestrator API, as an operator; it must be accepted."""
    conn.request("POST", "/api/orchestrator/milestones", body=body, headers={
        "Authorization": f"Token {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 202:
        raise RuntimeError(f"emit answered {response.status}")


def _settle(report_wait_s: float) -> None:
    time.sleep(report_wait_s)  # the last emits' deliveries land before the report


def _operator_token() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(
        username="bench-operator", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name="operators"))
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def _only_the_default_target() -> None:
    """Deliveries go only to this run's server (other benchmarks leave targets behind)."""
    from orchestrator_app.models import Target

    Target.objects.exclude(name="default").update(is_active=False)
