"""``make soak``: many signed envelopes from many senders against the server ``make run`` serves.

A soak sends ``total`` prepared ingest requests through wrk (``bench/soak.lua``, 64
connections by default: the senders), each exactly once and in an order that mixes

* unique valid envelopes (legacy-signed as the reference sender signs them),
* repeats (``REPEAT_RATIO``, 10 %): a valid envelope sent again later, byte for byte, as
  a sender retrying after a lost answer does; its twin may still be in flight,
* invalid ones (``INVALID_RATIO``, 5 %): half signed with a wrong secret (401
  ``signature_invalid``), half correctly signed with an event that lacks its claim (400
  ``invalid_event``).

Then ``verify`` checks what a user would notice: every valid key stored exactly once (one
feed row, one ``feed.milestone_accepted`` event), no invalid key stored, every invalid
request counted as a rejection of its reason (aggregate rows count what the per-address
rate limit folded into them: ``feed_rejection.count``), every answer the one expected
(accepted once per key, duplicate for each repeat) and no 5xx or socket error. During the
run the resident memory of the web server (every process of it) is sampled; ``make soak``
also requires it to stay within ±10 % of its median over the second half.

``python -m bench.soak [TOTAL]`` (``make soak``: 100,000) runs it on a scratch database
and prints the figures; the test suite runs 5,000 (tests/feed/test_soak.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.wrk import http_request, write_requests

SCRIPT = Path(__file__).with_name("soak.lua")
SENDERS = 64
THREADS = 2
REPEAT_RATIO = 0.10
INVALID_RATIO = 0.05
RSS_BAND = 0.10
INGEST_PATH = "/internal/milestones/ingest"


@dataclass
class Plan:
    """The prepared requests of one soak and what they must come to."""

    run_id: str
    requests: list[bytes]
    valid_keys: list[str]
    invalid_keys: list[str]
    repeats: int
    rejections: dict[str, int]  # reason_code -> how many requests must be counted


def _event(run_id: str, i: int, sender: int) -> dict[str, Any]:
    return {
        "milestoneId": f"soak.{run_id}.{i}",
        "timestampUtc": "2026-02-28T12:34:56.000Z",
        "scope": f"sender-{sender}",
        "claim": f"Soak milestone {i} from sender {sender}.",
        "evidence": [{"type": "log", "path": "bench/soak.log", "summary": "soak run"}],
        "riskStatus": "on-track",
        "nextAction": "Keep sending.",
        "source": "orchestrator",
    }


def _request(envelope: dict[str, Any], secret: str, now: float) -> bytes:
    from clawdbot import contract

    body = contract.envelope_bytes(envelope)
    headers = contract.signed_headers(body=body, idempotency_key=envelope["idempotencyKey"],
                                      legacy_secrets=[secret], webhook_secrets=[], now=now,
                                      payload=envelope)
    return http_request("POST", INGEST_PATH, body=body, headers=headers)


def plan(total: int, *, seed: int = 8, senders: int = SENDERS) -> Plan:
    """``total`` requests: 10 % repeats, 5 % invalid (half 401, half 400), the rest unique."""
    from django.conf import settings

    from clawdbot import contract

    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:10]
    secret = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)[0]
    wrong = contract.generate_legacy_secret()
    now = time.time()
    invalid = round(total * INVALID_RATIO)
    repeats = round(total * REPEAT_RATIO)
    unique = total - invalid - repeats
    badsig = invalid // 2
    # (sort key, request): sorting by the key gives the sending order.
    ordered: list[tuple[float, bytes]] = []
    valid_keys, invalid_keys = [], []
    originals: list[tuple[float, bytes]] = []
    for i in range(unique + invalid):
        sender = i % senders
        key = f"soak-{run_id}-{i}"
        envelope = {"idempotencyKey": key, "sentAtUtc": "2026-02-28T12:34:56.000Z",
                    "event": _event(run_id, i, sender)}
        if i < unique:
            valid_keys.append(key)
            raw = _request(envelope, secret, now)
        elif i < unique + badsig:
            invalid_keys.append(key)
            raw = _request(envelope, wrong, now)
        else:
            invalid_keys.append(key)
            del envelope["event"]["claim"]
            raw = _request(envelope, secret, now)
        at = rng.random()
        ordered.append((at, raw))
        if i < unique:
            originals.append((at, raw))
    for at, raw in rng.sample(originals, repeats) if repeats <= len(originals) else []:
        ordered.append((at + rng.random() * (1 - at), raw))  # later than its original
    ordered.sort(key=lambda pair: pair[0])
    return Plan(run_id, [raw for _, raw in ordered], valid_keys, invalid_keys, repeats,
                {"signature_invalid": badsig, "invalid_event": invalid - badsig})


# -- resident memory of the web server ------------------------------------------------------


def web_rss(root_pid: int) -> int:
    """Resident bytes of ``root_pid`` and every process under it (all web processes)."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    rss = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss += process.memory_info().rss
    return rss


class RssSampler:
    """Samples ``web_rss`` every ``interval_s`` in a thread while the soak runs."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        self.root_pid, self.interval_s = root_pid, interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), web_rss(self.root_pid)))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def second_half(self) -> list[int]:
        if not self.samples:
            return []
        start, end = self.samples[0][0], self.samples[-1][0]
        middle = start + (end - start) / 2
        return [rss for at, rss in self.samples if at >= middle]


# -- driving the load ---------------------------------------------------------------------


@dataclass
class Drive:
    """What wrk saw: answers by kind, socket errors, latency, wall time."""

    counts: dict[str, int]
    elapsed_s: float
    complete: bool

    @property
    def rps(self) -> float:
        return self.counts["answered"] / self.elapsed_s if self.elapsed_s else 0.0


def drive(url: str, requests: list[bytes], *, connections: int = SENDERS,
          deadline_s: float = 900.0, timeout_s: float = 30.0) -> Drive:
    """Send every request once through wrk with ``connections``; wait for all the answers."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    threads = min(THREADS, connections)
    path = write_requests(requests)
    done_dir = Path(tempfile.mkdtemp(prefix="soak-done-"))
    env = {**os.environ, "BENCH_REQUESTS": str(path), "BENCH_THREADS": str(threads),
           "SOAK_DONE_DIR": str(done_dir)}
    command = [binary, "-t", str(threads), "-c", str(connections), "-d",
               f"{int(deadline_s)}s", "--timeout", f"{timeout_s:g}s", "-s", str(SCRIPT), url]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        finished_at = None
        while process.poll() is None:
            if len(list(done_dir.iterdir())) >= threads:
                finished_at = time.monotonic()
                process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
                break
            time.sleep(0.05)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        path.unlink(missing_ok=True)
        shutil.rmtree(done_dir, ignore_errors=True)
    line = next((x for x in out.splitlines() if x.startswith("SOAK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary (exit {process.returncode}):\n{out}\n{err}")
    counts = json.loads(line.removeprefix("SOAK_JSON "))
    elapsed = (finished_at or time.monotonic()) - started
    return Drive(counts, elapsed, finished_at is not None)


# -- what the database holds afterwards --------------------------------------------------


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def rejection_counts(cursor: Any) -> dict[str, int]:
    """Rejections recorded so far, by reason, aggregate rows counting all they stand for."""
    cursor.execute("SELECT reason_code, sum(count) FROM feed_rejection GROUP BY reason_code")
    return {code: int(n) for code, n in cursor.fetchall()}


def verify(plan: Plan, result: Drive, rejections_before: dict[str, int]) -> Verdict:
    """Compare the answers and the database with what ``plan`` must have come to."""
    from django.db import connection

    verdict = Verdict()
    c = result.counts
    total = len(plan.requests)
    verdict.check(result.complete and c["answered"] == total,
                  f"{c['answered']} of {total} requests answered")
    verdict.check(c["s5xx"] == 0, f"{c['s5xx']} answers were 5xx")
    sockets = c["connect"] + c["read"] + c["write"] + c["timeout"]
    verdict.check(sockets == 0, f"{sockets} socket errors or timeouts")
    verdict.check(c["accepted"] == len(plan.valid_keys),
                  f"{c['accepted']} accepted for {len(plan.valid_keys)} distinct valid keys")
    verdict.check(c["duplicate"] == plan.repeats,
                  f"{c['duplicate']} duplicates answered for {plan.repeats} repeats")
    verdict.check(c["s401"] == plan.rejections["signature_invalid"],
                  f"{c['s401']} answered 401 for {plan.rejections['signature_invalid']}")
    verdict.check(c["s400"] == plan.rejections["invalid_event"],
                  f"{c['s400']} answered 400 for {plan.rejections['invalid_event']}")
    prefix = f"soak-{plan.run_id}-"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM feed_item"
            " WHERE idempotency_key LIKE %s", [prefix + "%"])
        rows, keys = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), count(DISTINCT stream_id) FROM eventstore_event"
            " WHERE type = 'feed.milestone_accepted' AND stream_id LIKE %s",
            [f"feed-ingest-{prefix}%"])
        events, streams = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM feed_item WHERE idempotency_key = ANY(%s)",
                       [plan.valid_keys])
        (valid_stored,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM feed_item WHERE idempotency_key = ANY(%s)",
                       [plan.invalid_keys])
        (invalid_stored,) = cursor.fetchone()
        after = rejection_counts(cursor)
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE aggregate) FROM feed_rejection")
        rejection_rows, aggregate_rows = cursor.fetchone()
    valid = len(plan.valid_keys)
    verdict.check(rows == keys == valid_stored == valid,
                  f"feed rows {rows} ({keys} distinct, {valid_stored} of the plan's keys) "
                  f"for {valid} valid keys")
    verdict.check(events == streams == valid,
                  f"{events} accepted events in {streams} streams for {valid} valid keys")
    verdict.check(invalid_stored == 0, f"{invalid_stored} invalid envelopes were stored")
    for code, expected in plan.rejections.items():
        counted = after.get(code, 0) - rejections_before.get(code, 0)
        verdict.check(counted == expected,
                      f"{counted} {code} rejections recorded for {expected} sent")
    verdict.figures.update({
        "requests": total, "valid_keys": valid, "repeats": plan.repeats,
        "invalid": len(plan.invalid_keys), "rps": result.rps, "elapsed_s": result.elapsed_s,
        "p50_ms": c["p50_us"] / 1000, "p99_ms": c["p99_us"] / 1000,
        "max_ms": c["max_us"] / 1000, "rejection_rows": rejection_rows,
        "rejection_aggregate_rows": aggregate_rows,
    })
    return verdict


def rss_verdict(verdict: Verdict, sampler: RssSampler) -> None:
    """Require the web server's RSS to stay within ±10 % of its second-half median."""
    half = sampler.second_half()
    all_rss = [rss for _, rss in sampler.samples]
    verdict.check(len(half) >= 4, f"only {len(half)} RSS samples in the second half")
    if not half:
        return
    median = statistics.median(half)
    low, high = min(half), max(half)
    verdict.figures.update({
        "rss_start_mib": all_rss[0] / 2**20, "rss_peak_mib": max(all_rss) / 2**20,
        "rss_second_half_median_mib": median / 2**20,
        "rss_second_half_min_mib": low / 2**20, "rss_second_half_max_mib": high / 2**20,
        "rss_second_half_spread_pct": 100 * (high - low) / median,
        "rss_samples": len(all_rss),
    })
    verdict.check(low >= median * (1 - RSS_BAND) and high <= median * (1 + RSS_BAND),
                  f"web RSS left ±{RSS_BAND:.0%} of its second-half median "
                  f"({low / 2**20:.1f}-{high / 2**20:.1f} MiB around {median / 2**20:.1f})")


def soak(url: str, web_pid: int | None, total: int, *, connections: int = SENDERS,
         deadline_s: float = 900.0, progress: Callable[[str], None] = lambda _: None
         ) -> Verdict:
    """Plan, drive and verify one soak against the web server at ``url``.

    With ``web_pid`` (the server's root process) its memory is sampled and checked too.
    """
    from django.db import connection

    started = time.monotonic()
    prepared = plan(total, senders=connections)
    progress(f"{total:,} requests signed in {time.monotonic() - started:.0f}s; sending")
    with connection.cursor() as cursor:
        before = rejection_counts(cursor)
    if web_pid is None:
        result = drive(url, prepared.requests, connections=connections, deadline_s=deadline_s)
        return verify(prepared, result, before)
    with RssSampler(web_pid) as sampler:
        result = drive(url, prepared.requests, connections=connections, deadline_s=deadline_s)
    verdict = verify(prepared, result, before)
    rss_verdict(verdict, sampler)
    return verdict


# -- make soak ------------------------------------------------------------------------------


def _web_server() -> Iterator[tuple[str, int]]:
    """``make run``'s web server (its own command builders) on the scratch database."""
    from bench.servers import answers, free_port
    from clawdbot.serve import stop_process, web_command, web_env

    port = free_port()
    env = {**web_env(), "DJANGO_SETTINGS_MODULE": "clawdbot.settings", "LOG_LEVEL": "ERROR"}
    process = subprocess.Popen(web_command("127.0.0.1", port), env=env,
                               cwd=Path(__file__).resolve().parent.parent,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not answers(f"{url}/api/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        stop_process(process, timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    from contextlib import contextmanager

    from bench.harness import prepare_database

    total = int(argv[0]) if argv else int(os.environ.get("SOAK_TOTAL", "100000"))
    connections = int(os.environ.get("SOAK_SENDERS", str(SENDERS)))
    prepare_database("clawdbot_soak")
    print(f"== soak: {total:,} envelopes from {connections} senders "
          f"({REPEAT_RATIO:.0%} repeated, {INVALID_RATIO:.0%} invalid)", flush=True)
    with contextmanager(_web_server)() as (url, pid):
        verdict = soak(url, pid, total, connections=connections,
                       progress=lambda text: print(f"   {text}", flush=True))
    for key, value in verdict.figures.items():
        print(f"   {key:<32} {value:>14,.2f}")
    if verdict.problems:
        print("SOAK FAILED:\n  " + "\n  ".join(verdict.problems), flush=True)
        return 1
    print("soak passed: every valid key stored once, every invalid one counted, no 5xx, "
          f"web RSS within ±{RSS_BAND:.0%} over the second half", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
