"""The dispatcher: a thread in each django-q2 worker process that delivers what is due.

It LISTENs on ``WAKE_CHANNEL`` (an emit, requeue or resume NOTIFYs at commit), so a first
attempt starts within milliseconds of the commit, and otherwise polls every ``POLL_S`` for
retries that have come due and leases that have expired. Claims use SKIP LOCKED, so any
number of dispatchers (workers, hosts) share the work without stepping on each other.
The thread starts on django-q2's ``post_spawn`` (see ``apps.py``): it lives and dies with
its worker process, and a worker killed mid-attempt just leaves a lease to expire.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import close_old_connections, connection

from orchestrator_app.services.delivery import (
    Sent,
    deliveries_record,
    deliveries_send,
    worker_name,
)
from orchestrator_app.transport import Transport, default_transport
from orchestrator_app.wake import WAKE_CHANNEL

log = logging.getLogger(__name__)

#: How long to wait for a NOTIFY before looking for due retries anyway.
POLL_S = 0.25
#: Deliveries claimed at once; attempted by ``PARALLEL`` threads.
BATCH = 64
PARALLEL = 8


def _listen() -> psycopg.Connection:
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {WAKE_CHANNEL}")
    return conn


def _wait_for_wake(listener: psycopg.Connection | None,
                   stop: threading.Event) -> psycopg.Connection | None:
    """Wait up to ``POLL_S`` for a NOTIFY, (re)connecting the listener first if needed.

    Never raises: the dispatcher thread must outlive a database that is not up yet when
    the worker spawns, or goes away later; until it is back, this just paces the polls.
    """
    try:
        if listener is None or listener.closed:
            listener = _listen()
        for _ in listener.notifies(timeout=POLL_S, stop_after=1):
            pass
        return listener
    except psycopg.Error:
        log.warning("dispatcher has no LISTEN connection; polling until the database is back")
        if listener is not None:
            listener.close()
        stop.wait(POLL_S)
        return None


class _Pool:
    """``PARALLEL`` daemon threads and a ``map`` over them.

    Daemon threads (not a ThreadPoolExecutor, whose threads are joined at exit): a worker
    process told to stop must not wait for a hanging receiver; its leases just expire.
    """

    def __init__(self, size: int) -> None:
        self.work: queue.Queue[tuple[Callable[[Any], Any], Any, list[Any], int]] = queue.Queue()
        for n in range(size):
            threading.Thread(target=self._loop, name=f"outbox-{n}", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, arg, results, i = self.work.get()
            try:
                results[i] = fn(arg)
            except BaseException as exc:  # handed back to map()'s caller
                results[i] = _Failed(exc)
            finally:
                self.work.task_done()

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        results: list[Any] = [None] * len(items)
        for i, item in enumerate(items):
            self.work.put((fn, item, results, i))
        self.work.join()
        for result in results:
            if isinstance(result, _Failed):
                raise result.exc
        return results


@dataclass(frozen=True)
class _Failed:
    exc: BaseException


class _Recorder:
    """Records sent batches on its own thread, so the next batch is sent meanwhile.

    The queue holds one batch: a dispatcher that sends faster than it records waits.
    """

    def __init__(self) -> None:
        self.batches: queue.Queue[list[Sent] | None] = queue.Queue(maxsize=1)
        self.thread = threading.Thread(target=self._loop, name="outbox-recorder", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Record what is queued, then stop and close the thread's database connection."""
        self.batches.put(None)
        self.thread.join()

    def _loop(self) -> None:
        while (sent := self.batches.get()) is not None:  # None: the dispatcher stopped
            try:
                deliveries_record(sent=sent)
            except Exception:  # leases expire and the deliveries are attempted again
                log.exception("recording a batch failed")
                connection.close()
        connection.close()


def dispatch_forever(*, stop: threading.Event, transport: Transport | None = None) -> None:
    transport = transport or default_transport()
    pool, recorder = _Pool(PARALLEL), _Recorder()
    owner = worker_name()
    listener: psycopg.Connection | None = None
    while not stop.is_set():
        try:
            sent = deliveries_send(transport=transport, owner=owner, limit=BATCH,
                                   map_fn=pool.map, parallel=PARALLEL)
            if sent:
                recorder.batches.put(sent)
                continue  # more may be due already
        except Exception:  # leases expire and the deliveries are attempted again
            log.exception("sending a batch failed")
            close_old_connections()
            connection.close()
        listener = _wait_for_wake(listener, stop)
    recorder.close()
    if listener is not None:
        listener.close()
    connection.close()


def start_in_background() -> threading.Thread:
    thread = threading.Thread(target=dispatch_forever, kwargs={"stop": threading.Event()},
                              name="outbox-dispatcher", daemon=True)
    thread.start()
    return thread
