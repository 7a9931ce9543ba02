"""The dispatcher: a thread in each django-q2 worker process that delivers what is due.

It LISTENs on ``WAKE_CHANNEL`` (an emit, requeue or resume NOTIFYs at commit), so a first
attempt starts within milliseconds of the commit, and otherwise polls every ``POLL_S`` for
retries that have come due and leases that have expired. Claims use SKIP LOCKED, so any
number of dispatchers (workers, hosts) share the work without stepping on each other.
The thread starts on django-q2's ``post_spawn`` (see ``apps.py``): it lives and dies with
its worker process, and a worker killed mid-attempt just leaves a lease to expire.

Targets are isolated from one another. Each claimed delivery is sent at once by a thread
of its own (``PARALLEL`` of them), one target holds at most ``PER_TARGET`` of those, and
each attempt is recorded as soon as it ends (with whatever else ended meanwhile), never
held back until the slowest attempt of a batch is done. A target that hangs until its
timeout therefore ties up its own ``PER_TARGET`` threads, and the others go on.

A target that takes batches (``supports_batch``) is claimed separately, up to
``batch.MAX_ITEMS`` deliveries per thread it may use: several due at once go as batches
(``delivery.units``), one request per thread, so a backlog of thousands drains in a few
requests instead of thousands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections import Counter

import psycopg
from django.db import close_old_connections, connection

from orchestrator_app.health import DISPATCHER_APPLICATION, HEARTBEAT_S
from orchestrator_app.services import batch
from orchestrator_app.services.delivery import (
    Job,
    Sent,
    deliveries_claim,
    deliveries_load,
    deliveries_record_each,
    unit_send,
    units,
    worker_name,
)
from orchestrator_app.transport import Transport, default_transport
from orchestrator_app.wake import WAKE_CHANNEL

log = logging.getLogger(__name__)

#: How long to wait for a NOTIFY (or a free thread) before looking for due retries anyway.
POLL_S = 0.25
#: Attempts in flight at once per worker process, and of those at most per target.
PARALLEL = 16
PER_TARGET = 4
#: Attempts recorded in one transaction, at most (a whole batch's, at best).
RECORD_BATCH = batch.MAX_ITEMS


def _listen() -> psycopg.Connection:
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    params["application_name"] = DISPATCHER_APPLICATION  # its heartbeat: health.workers_alive
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {WAKE_CHANNEL}")
    return conn


class _Waker:
    """A self-pipe: the senders write a byte when an attempt ends, so the dispatcher can
    wait for a NOTIFY and for a free thread in the same ``select``."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.lock = threading.Lock()
        self.closed = False

    def wake(self) -> None:
        with self.lock:  # a sender may end its attempt after the dispatcher stopped
            if self.closed:
                return
            # A full pipe means a wake-up is pending anyway.
            with contextlib.suppress(BlockingIOError):
                os.write(self.write_fd, b"x")

    def drain(self) -> None:
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        with self.lock:
            self.closed = True
            os.close(self.read_fd)
            os.close(self.write_fd)


def _wait(listener: psycopg.Connection | None, waker: _Waker,
          stop: threading.Event) -> psycopg.Connection | None:
    """Wait up to ``POLL_S`` for a NOTIFY or an ended attempt, (re)connecting the listener
    first if needed.

    Never raises: the dispatcher thread must outlive a database that is not up yet when
    the worker spawns, or goes away later; until it is back, this just paces the polls.
    """
    try:
        if listener is None or listener.closed:
            listener = _listen()
        select.select([listener.fileno(), waker.read_fd], [], [], POLL_S)
        waker.drain()
        for _ in listener.notifies(timeout=0):  # consume what arrived
            pass
        return listener
    except (psycopg.Error, OSError):
        log.warning("dispatcher has no LISTEN connection; polling until the database is back")
        if listener is not None:
            listener.close()
        stop.wait(POLL_S)
        return None


def _heartbeat(listener: psycopg.Connection | None, last: float
               ) -> tuple[psycopg.Connection | None, float]:
    """Every ``HEARTBEAT_S``, a statement on the listening connection (opening it first if
    need be): its ``state_change`` in ``pg_stat_activity`` is the worker's heartbeat
    (``/api/health``). Run on every turn of the loop, so a worker draining a backlog,
    which never waits, keeps beating."""
    now = time.monotonic()
    if now - last < HEARTBEAT_S:
        return listener, last
    try:
        if listener is None or listener.closed:
            listener = _listen()  # its LISTEN is a beat
        else:
            listener.execute("SELECT 1")
    except (psycopg.Error, OSError):
        if listener is not None:
            listener.close()
        return None, now  # the database is away: _wait reports it and paces the retries
    return listener, now


class _Senders:
    """``PARALLEL`` daemon threads sending units of jobs (one request each: a job, or a
    batch), counting the requests in flight per target.

    Daemon threads (not a ThreadPoolExecutor, whose threads are joined at exit): a worker
    process told to stop must not wait for a hanging receiver; its leases just expire.
    """

    def __init__(self, transport: Transport, done: queue.Queue[Sent | None],
                 waker: _Waker) -> None:
        self.transport, self.done, self.waker = transport, done, waker
        self.jobs: queue.Queue[list[Job]] = queue.Queue()
        self.lock = threading.Lock()
        self.busy: Counter[str] = Counter()
        for n in range(PARALLEL):
            threading.Thread(target=self._loop, name=f"outbox-{n}", daemon=True).start()

    def in_flight(self) -> dict[str, int]:
        with self.lock:
            return {target: n for target, n in self.busy.items() if n}

    def submit(self, unit: list[Job]) -> None:
        with self.lock:
            self.busy[unit[0].target.name] += 1
        self.jobs.put(unit)

    def _loop(self) -> None:
        while True:
            unit = self.jobs.get()
            try:
                for sent in unit_send(unit, self.transport):  # unit_send never raises
                    self.done.put(sent)
            finally:
                with self.lock:
                    self.busy[unit[0].target.name] -= 1
                self.waker.wake()


class _Recorder:
    """Records ended attempts on its own thread, as they end: the first one waits for
    nothing else, and whatever ended meanwhile (up to ``RECORD_BATCH``) goes with it."""

    def __init__(self) -> None:
        self.done: queue.Queue[Sent | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="outbox-recorder", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Record what has ended, then stop and close the thread's database connection."""
        self.done.put(None)
        self.thread.join()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Sent] = []
            item = self.done.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= RECORD_BATCH:
                    break
                try:
                    item = self.done.get_nowait()
                except queue.Empty:
                    break
            stopping = item is None
            if batch:
                try:
                    deliveries_record_each(sent=batch)
                except Exception:  # leases expire and the deliveries are attempted again
                    log.exception("recording %d attempts failed", len(batch))
                    connection.close()
        connection.close()


def _claim(senders: _Senders, worker: str) -> bool:
    """Claim and start what is due and fits; True when more may be due right now."""
    busy = senders.in_flight()
    room = PARALLEL - sum(busy.values())
    if room <= 0:
        return False
    refusing = batch.batch_refusals()
    claims = deliveries_claim(limit=room, worker=worker, parallel=room, per_target=PER_TARGET,
                              busy=busy, batching=False, refusing=refusing)
    full = len(claims) == room
    room -= len(claims)
    if room > 0:
        # Targets that take batches: a thread of their PER_TARGET carries MAX_ITEMS.
        size = batch.MAX_ITEMS
        more = deliveries_claim(limit=room * size, worker=worker, parallel=room * size,
                                per_target=PER_TARGET * size, batching=True, refusing=refusing,
                                busy={t: n * size for t, n in busy.items()})
        full = full or len(more) == room * size
        claims += more
    jobs = deliveries_load(claims=claims) if claims else []
    for unit in units(jobs, refusing=refusing):
        senders.submit(unit)
    return full


def dispatch_forever(*, stop: threading.Event, transport: Transport | None = None) -> None:
    waker, recorder = _Waker(), _Recorder()
    senders = _Senders(transport or default_transport(), recorder.done, waker)
    worker = worker_name()
    listener: psycopg.Connection | None = None
    beat = 0.0
    while not stop.is_set():
        listener, beat = _heartbeat(listener, beat)
        try:
            if _claim(senders, worker):
                continue  # more may be due already
        except Exception:  # leases expire and the deliveries are attempted again
            log.exception("claiming deliveries failed")
            close_old_connections()
            connection.close()
        listener = _wait(listener, waker, stop)
    recorder.close()
    waker.close()
    if listener is not None:
        listener.close()
    connection.close()


def start_in_background() -> threading.Thread:
    thread = threading.Thread(target=dispatch_forever, kwargs={"stop": threading.Event()},
                              name="outbox-dispatcher", daemon=True)
    thread.start()
    return thread
