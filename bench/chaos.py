"""``make chaos``: faults injected into a running pipeline, each checked against its invariant.

Everything runs on a PostgreSQL of its own: an embedded server in a temporary ``var/``
(``CLAWDBOT_VAR_DIR``), so restarting it touches nothing else on the machine. The web
server and the worker are started with ``make run``'s own command lines
(``clawdbot.serve.web_command``/``web_env``, ``manage.py qcluster``). Scenarios:

* ``postgres_restart``: senders keep ingesting while PostgreSQL stops (fast shutdown) and
  comes back; they retry on 503 and connection errors. Every key is stored exactly once,
  every sender ends with ``accepted`` or ``duplicate``, no answer but 503 is a 5xx, and
  the same web process serves again (time to recover measured).
* ``worker_kill``: the worker is killed with SIGKILL while it delivers; a new one finishes.
  Every emitted milestone is stored exactly once at the receiver (our own ingest), every
  delivery ends delivered or duplicate, and every attempt the killed worker had started
  is in the history (marked ``interrupted`` when no outcome was recorded).
* ``flaky_receiver``: a receiver answers 503 to every other request. Everything is
  delivered in the end and every request it received is an attempt event.
* ``web_kill``: a web process is killed with SIGKILL under ingest load, so some commits
  never reach their broadcast; a WebSocket client resumes with ``?after=<last position
  seen>`` on the restarted server and must see every committed milestone once, in order.

``python -m bench.chaos [SCENARIO ...]`` runs them (all by default), prints the figures
and exits 1 if an invariant failed. Each scenario is bounded by ``SCENARIO_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
SCENARIO_TIMEOUT_S = float(os.environ.get("CHAOS_SCENARIO_TIMEOUT_S", "150"))
OUTAGE_S = 3.0
INGEST = "/internal/milestones/ingest"


class Failed(AssertionError):
    pass


def check(ok: bool, problem: str) -> None:
    if not ok:
        raise Failed(problem)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str,
              every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every_s)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- processes ------------------------------------------------------------------------------


class _Group:
    """A child started in a process group of its own: killed or stopped as a whole."""

    process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL the child and every process it forked (its process group)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        from clawdbot.serve import stop_process

        if self.process is not None:
            stop_process(self.process, timeout=15)
            self.kill()


@dataclass
class Web(_Group):
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Web:
        from clawdbot.serve import web_command, web_env

        env = {**web_env(), "LOG_LEVEL": "ERROR"}
        self.process = subprocess.Popen(web_command("127.0.0.1", self.port), cwd=BASE_DIR,
                                        env=env, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, timeout=60, what="the web server to answer", every_s=0.2)
        return self

    def answers(self) -> bool:
        import httpx

        try:
            # The web answers and reaches the database (503 while no worker: the chaos
            # kills workers, and the web must go on answering).
            return httpx.get(f"{self.url}/api/health", timeout=2).json().get("database") == "up"
        except (httpx.HTTPError, ValueError):
            return False


@dataclass
class Worker(_Group):
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"], cwd=BASE_DIR,
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self


def postgres_restart(var: Path, outage_s: float) -> float:
    """Stop the embedded PostgreSQL, keep it down ``outage_s``, start it; returns when up.

    The start lock is held through the outage, so no process of the pipeline starts the
    server again meanwhile (they wait for it, as they would for a real restart).
    """
    from clawdbot.embedded_pg import server

    paths = server.Paths(var)
    with server._locked(paths.start_lock):
        server.stop(var)
        time.sleep(outage_s)  # the outage itself, not a wait for a condition
        server._start(paths, server._system_user())
        server._ensure_watcher(paths)  # the old watcher left when the server stopped
    return time.monotonic()


# -- ingest senders that retry ---------------------------------------------------------


@dataclass
class Sent:
    answers: dict[str, str] = field(default_factory=dict)  # key -> accepted/duplicate
    attempts: int = 0
    unavailable: int = 0  # 503 answers
    connection_errors: int = 0
    other_5xx: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    successes_at: list[float] = field(default_factory=list)


def signed_requests(count: int, label: str) -> list[tuple[str, bytes, dict[str, str]]]:
    from django.conf import settings

    from bench.soak import _event
    from clawdbot import contract

    secret = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)[0]
    run = uuid.uuid4().hex[:8]
    out = []
    for i in range(count):
        key = f"chaos-{label}-{run}-{i}"
        envelope = {"idempotencyKey": key, "sentAtUtc": "2026-02-28T12:34:56.000Z",
                    "event": _event(run, i, i % 16)}
        body = contract.envelope_bytes(envelope)
        headers = contract.signed_headers(body=body, idempotency_key=key,
                                          legacy_secrets=[secret], webhook_secrets=[],
                                          now=time.time(), payload=envelope)
        out.append((key, body, headers))
    return out


async def send_all(url: str, requests: list[tuple[str, bytes, dict[str, str]]], *,
                   senders: int, deadline_s: float,
                   progress: Callable[[int], None] = lambda _: None) -> Sent:
    """Send each request until it is answered 200, retrying on 503 and connection errors."""
    import httpx

    sent = Sent()
    queue: asyncio.Queue[tuple[str, bytes, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    deadline = time.monotonic() + deadline_s

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while not queue.empty():
                key, body, headers = queue.get_nowait()
                while True:
                    if time.monotonic() > deadline:
                        sent.unexpected.append(f"{key}: no answer before the deadline")
                        break
                    sent.attempts += 1
                    try:
                        response = await client.post(INGEST, content=body, headers=headers)
                    except httpx.TransportError:
                        sent.connection_errors += 1
                        await asyncio.sleep(0.2)  # the sender's back-off between retries
                        continue
                    if response.status_code == 503:
                        sent.unavailable += 1
                        await asyncio.sleep(0.2)
                        continue
                    if response.status_code >= 500:
                        sent.other_5xx.append(response.status_code)
                        await asyncio.sleep(0.2)
                        continue
                    if response.status_code != 200:
                        sent.unexpected.append(f"{key}: {response.status_code}")
                        break
                    sent.answers[key] = response.json()["status"]
                    sent.successes_at.append(time.monotonic())
                    progress(len(sent.answers))
                    break

    await asyncio.gather(*(sender() for _ in range(senders)))
    return sent


def stored_once(keys: list[str]) -> tuple[int, int, int]:
    """(feed rows, distinct keys among them, accepted events) for ``keys``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT idempotency_key) FROM feed_item"
                       " WHERE idempotency_key = ANY(%s)", [keys])
        rows, distinct = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM eventstore_event WHERE type ="
                       " 'feed.milestone_accepted' AND stream_id = ANY(%s)",
                       [[f"feed-ingest-{k}" for k in keys]])
        (events,) = cursor.fetchone()
    return rows, distinct, events


def check_exactly_once(keys: list[str], sent: Sent) -> None:
    check(not sent.unexpected, f"unexpected answers: {sent.unexpected[:5]}")
    check(not sent.other_5xx, f"5xx other than 503: {sent.other_5xx[:5]}")
    check(len(sent.answers) == len(keys), f"{len(sent.answers)} of {len(keys)} keys answered")
    check(set(sent.answers.values()) <= {"accepted", "duplicate"},
          f"answers {set(sent.answers.values())}")
    rows, distinct, events = stored_once(keys)
    check(rows == distinct == events == len(keys),
          f"{rows} feed rows ({distinct} distinct), {events} events for {len(keys)} keys")


# -- scenarios ----------------------------------------------------------------------------


def scenario_postgres_restart(ctx: Context) -> dict[str, float]:
    requests = signed_requests(600, "pg")
    restarted = threading.Event()
    up_at: list[float] = []
    down_at: list[float] = []

    def on_progress(answered: int) -> None:
        if answered >= 150 and not restarted.is_set():
            restarted.set()

            def restart() -> None:
                down_at.append(time.monotonic())
                up_at.append(postgres_restart(ctx.var, OUTAGE_S))

            threading.Thread(target=restart, daemon=True).start()

    web_pid = ctx.web.process.pid if ctx.web.process else None
    started = time.monotonic()
    sent = asyncio.run(send_all(ctx.web.url, requests, senders=16,
                                deadline_s=SCENARIO_TIMEOUT_S - 20, progress=on_progress))
    check(bool(up_at), "PostgreSQL was not restarted during the load")
    check_exactly_once([k for k, _, _ in requests], sent)
    check(ctx.web.process is not None and ctx.web.process.poll() is None
          and ctx.web.process.pid == web_pid, "the web server did not survive the restart")
    first_after = min((t for t in sent.successes_at if t > up_at[0]), default=None)
    check(first_after is not None, "no ingest succeeded after PostgreSQL came back")
    assert first_after is not None
    return {"envelopes": len(requests), "outage_s": up_at[0] - down_at[0],
            "recovery_s": first_after - up_at[0], "answered_503": sent.unavailable,
            "connection_errors": sent.connection_errors,
            "duplicates_answered": sum(v == "duplicate" for v in sent.answers.values()),
            "elapsed_s": time.monotonic() - started}


def _emit(count: int, label: str, target_names: list[str]) -> list[str]:
    from bench.soak import _event
    from orchestrator_app.models import Target
    from orchestrator_app.services.emit import milestone_emit

    targets = list(Target.objects.filter(name__in=target_names))
    run = uuid.uuid4().hex[:8]
    keys = []
    for i in range(count):
        result = milestone_emit(event=_event(f"{label}{run}", i, i % 8), targets=targets)
        keys.append(result.idempotency_key)
    return keys


def _deliveries(keys: list[str], target: str) -> dict[str, int]:
    from django.db.models import Count

    from orchestrator_app.models import Delivery

    rows = (Delivery.objects.filter(idempotency_key__in=keys, target=target)
            .values("status").annotate(n=Count("id")))
    return {row["status"]: row["n"] for row in rows}


def _settled(keys: list[str], target: str) -> bool:
    counts = _deliveries(keys, target)
    return counts.get("delivered", 0) + counts.get("duplicate", 0) == len(keys)


def scenario_worker_kill(ctx: Context) -> dict[str, float]:
    from orchestrator_app.models import DeliveryAttempt, Target

    Target.objects.update_or_create(name="chaos-ingest", defaults={
        "url": f"{ctx.web.url}{INGEST}", "timeout_s": 5.0})
    keys = _emit(400, "wk", ["chaos-ingest"])
    attempts = DeliveryAttempt.objects.filter(delivery__idempotency_key__in=keys,
                                              delivery__target="chaos-ingest")
    worker = Worker().start()
    try:
        wait_for(lambda: _deliveries(keys, "chaos-ingest").get("delivered", 0) >= 40,
                 timeout=60, what="the worker to deliver 40 milestones")
        worker.kill()
        killed_at = time.monotonic()
        at_kill = _deliveries(keys, "chaos-ingest")
        in_flight = attempts.filter(outcome="started").count()
        worker.start()
        wait_for(lambda: _settled(keys, "chaos-ingest"), timeout=SCENARIO_TIMEOUT_S - 30,
                 what="every delivery to settle after the kill", every_s=0.5)
        recovered = time.monotonic() - killed_at
    finally:
        worker.stop()
    rows, distinct, events = stored_once(keys)
    check(rows == distinct == events == len(keys),
          f"{rows} stored ({distinct} distinct, {events} events) for {len(keys)} emitted")
    outcomes: dict[str, int] = {}
    for outcome in attempts.values_list("outcome", flat=True):
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    check(outcomes.get("started", 0) == 0,
          f"{outcomes.get('started')} attempts still show as started after settling")
    check(in_flight >= 1 and at_kill.get("delivered", 0) < len(keys),
          "the worker was not killed mid-batch (no attempt in flight)")
    check(outcomes.get("interrupted", 0) == in_flight,
          f"{in_flight} attempts were in flight at the kill, "
          f"{outcomes.get('interrupted', 0)} show as interrupted")
    with_attempts = attempts.values("delivery_id").distinct().count()
    check(with_attempts == len(keys), f"{with_attempts} of {len(keys)} deliveries have attempts")
    return {"emitted": len(keys), "delivered_at_kill": at_kill.get("delivered", 0),
            "in_flight_at_kill": in_flight,
            "settled_after_kill_s": recovered, "attempts": sum(outcomes.values()),
            "interrupted_attempts": outcomes.get("interrupted", 0),
            "duplicates": _deliveries(keys, "chaos-ingest").get("duplicate", 0)}


class FlakyReceiver(BaseHTTPRequestHandler):
    """Answers 503 to every other request, 200 ``accepted`` otherwise; records each."""

    lock = threading.Lock()
    requests = 0
    accepted: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key = json.loads(body).get("idempotencyKey", "")
        with FlakyReceiver.lock:
            FlakyReceiver.requests += 1
            fail = FlakyReceiver.requests % 2 == 1
            if not fail:
                FlakyReceiver.accepted.append(key)
        status, answer = ((503, {"ok": False, "status": "rejected", "reason": "flaky"})
                          if fail else (200, {"ok": True, "status": "accepted",
                                              "milestoneId": "m"}))
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def scenario_flaky_receiver(ctx: Context) -> dict[str, float]:
    from django.db import connection

    from orchestrator_app.models import DeliveryAttempt, Target

    FlakyReceiver.requests, FlakyReceiver.accepted = 0, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FlakyReceiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Target.objects.update_or_create(name="chaos-flaky", defaults={
        "url": f"http://127.0.0.1:{httpd.server_address[1]}/ingest", "timeout_s": 5.0,
        "retry_schedule": ",".join(["1"] * 15)})
    keys = _emit(100, "fl", ["chaos-flaky"])
    started = time.monotonic()
    worker = Worker().start()
    try:
        wait_for(lambda: _settled(keys, "chaos-flaky"), timeout=SCENARIO_TIMEOUT_S - 30,
                 what="every delivery to the flaky receiver to settle", every_s=0.5)
    finally:
        worker.stop()
        httpd.shutdown()
    elapsed = time.monotonic() - started
    check(sorted(set(FlakyReceiver.accepted)) == sorted(keys),
          f"{len(set(FlakyReceiver.accepted))} of {len(keys)} keys answered 200 at the receiver")
    attempts = DeliveryAttempt.objects.filter(delivery__target="chaos-flaky").count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM eventstore_event WHERE type ="
                       " 'outbox.delivery_attempted' AND stream_id = ANY(%s)",
                       [[f"outbox-{k}" for k in keys]])
        (attempt_events,) = cursor.fetchone()
    check(attempt_events == FlakyReceiver.requests == attempts,
          f"{FlakyReceiver.requests} requests received, {attempt_events} attempt events, "
          f"{attempts} attempt rows")
    return {"emitted": len(keys), "requests_received": FlakyReceiver.requests,
            "answered_503": FlakyReceiver.requests - len(FlakyReceiver.accepted),
            "attempt_events": attempt_events, "all_delivered_s": elapsed}


async def _follow(url: str, after: int, positions: list[int], stop: asyncio.Event) -> None:
    """Read milestone frames from ``url?after=…`` into ``positions`` until the socket
    closes or ``stop`` is set; resume after the last position seen when it drops."""
    import websockets

    while not stop.is_set():
        last = positions[-1] if positions else after
        try:
            async with websockets.connect(f"{url}/ws/milestones/?after={last}",
                                          open_timeout=5,
                                          origin=f"http://{url.split('//')[1]}") as socket:
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(socket.recv(), timeout=0.5)
                    except TimeoutError:
                        continue
                    message = json.loads(raw)
                    if message.get("type") == "milestone":
                        positions.append(message["position"])
        except (OSError, websockets.WebSocketException, TimeoutError):
            await asyncio.sleep(0.2)  # the client's back-off before it resumes


def _max_position() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(position), 0) FROM feed_item")
        return int(cursor.fetchone()[0])


def scenario_web_kill(ctx: Context) -> dict[str, float]:
    from django.db import connection

    start_position = _max_position()
    requests = signed_requests(800, "web")
    ws_url = ctx.web.url.replace("http://", "ws://")
    positions: list[int] = []
    timings: dict[str, float] = {}

    async def run() -> Sent:
        stop = asyncio.Event()
        follower = asyncio.create_task(_follow(ws_url, start_position, positions, stop))
        killed = asyncio.Event()

        def on_progress(answered: int) -> None:
            if answered >= 200 and not killed.is_set():
                killed.set()
                ctx.web.kill()  # under load: commits in flight lose their broadcast
                timings["killed_at"] = time.monotonic()
                threading.Thread(target=_restart, daemon=True).start()

        def _restart() -> None:
            ctx.web.start()
            timings["back_at"] = time.monotonic()

        sent = await send_all(ctx.web.url, requests, senders=16,
                              deadline_s=SCENARIO_TIMEOUT_S - 40, progress=on_progress)
        final = await asyncio.to_thread(_max_position)
        deadline = time.monotonic() + 30
        while (not positions or positions[-1] < final) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await follower
        return sent

    sent = asyncio.run(run())
    check("back_at" in timings, "the web server was not killed and restarted under load")
    keys = [k for k, _, _ in requests]
    check_exactly_once(keys, sent)
    with connection.cursor() as cursor:
        cursor.execute("SELECT position FROM feed_item WHERE position > %s ORDER BY position",
                       [start_position])
        committed = [row[0] for row in cursor.fetchall()]
    repeats = len(positions) - len(set(positions))
    check(repeats == 0, f"{repeats} milestones reached the resuming client twice")
    check(positions == sorted(positions), "the resuming client saw positions out of order")
    missing = sorted(set(committed) - set(positions))
    check(not missing, f"{len(missing)} committed milestones never reached the client "
                       f"(first {missing[:5]})")
    return {"envelopes": len(requests), "client_received": len(positions),
            "web_back_after_s": timings["back_at"] - timings["killed_at"],
            "connection_errors": sent.connection_errors, "answered_503": sent.unavailable,
            "duplicates_answered": sum(v == "duplicate" for v in sent.answers.values())}


# -- running them ---------------------------------------------------------------------------


@dataclass
class Context:
    var: Path
    web: Web


SCENARIOS: dict[str, Callable[[Context], dict[str, float]]] = {
    "postgres_restart": scenario_postgres_restart,
    "worker_kill": scenario_worker_kill,
    "flaky_receiver": scenario_flaky_receiver,
    "web_kill": scenario_web_kill,
}


@contextlib.contextmanager
def pipeline(var: Path) -> Iterator[Context]:
    """A dedicated embedded PostgreSQL in ``var``, migrated, and the web server on it."""
    port = free_port()
    os.environ.update({
        "CLAWDBOT_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "clawdbot.settings",
        "CLAWDBOT_SEED": "0", "CLAWDBOT_PIPELINE_MILESTONES": "0",
        "MILESTONE_INGEST_URL": f"http://127.0.0.1:{port}{INGEST}",
        "MILESTONE_LEASE_MARGIN_S": "3", "LOG_LEVEL": "ERROR",
    })
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("CLAWDBOT_DB_NAME", None)
    import django

    django.setup()
    from clawdbot.embedded_pg import server

    server.ensure_running(var)
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), "migrate", "-v", "0"],
                   check=True, cwd=BASE_DIR)
    web = Web(port).start()
    try:
        yield Context(var, web)
    finally:
        web.stop()
        from django.db import connections

        connections.close_all()
        server.stop(var)  # the temporary directory goes next: stop its server first


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    failures = 0
    signal.signal(signal.SIGTERM, _terminate)  # a timeout's SIGTERM still cleans up
    with tempfile.TemporaryDirectory(prefix="clawdbot-chaos-") as tmp, \
            pipeline(Path(tmp) / "var") as ctx:
        for name in names:
            print(f"== chaos: {name}", flush=True)
            started = time.monotonic()
            try:
                figures = SCENARIOS[name](ctx)
            except Failed as exc:
                failures += 1
                print(f"   FAILED after {time.monotonic() - started:.0f}s: {exc}", flush=True)
                if ctx.web.process is None or ctx.web.process.poll() is not None:
                    ctx.web.start()
                continue
            for key, value in figures.items():
                print(f"   {key:<24} {value:>12,.2f}", flush=True)
            print(f"   passed in {time.monotonic() - started:.0f}s", flush=True)
    print("chaos: all invariants held" if not failures else f"chaos: {failures} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
