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
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.db import close_old_connections, connection

from orchestrator_app.services.delivery import deliveries_claim, delivery_attempt, worker_name
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


def _reconnect(old: psycopg.Connection) -> psycopg.Connection:
    old.close()
    try:
        return _listen()
    except psycopg.Error:
        return old  # closed: the next notifies() fails again and we retry


def _attempt(claim: object, transport: Transport) -> None:
    try:
        delivery_attempt(claim=claim, transport=transport)
    except Exception:  # the lease expires and another attempt follows; keep serving
        log.exception("delivery attempt failed")
    finally:
        close_old_connections()


def dispatch_forever(*, stop: threading.Event, transport: Transport | None = None) -> None:
    transport = transport or default_transport()
    owner = worker_name()
    listener = _listen()
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="outbox") as pool:
        while not stop.is_set():
            try:
                claims = deliveries_claim(owner=owner, limit=BATCH)
            except Exception:
                log.exception("claiming deliveries failed")
                connection.close()
                claims = []
            if claims:
                list(pool.map(lambda c: _attempt(c, transport), claims))
                continue  # more may be due already
            try:
                for _ in listener.notifies(timeout=POLL_S, stop_after=1):
                    pass
            except psycopg.Error:  # the database went away: poll until it is back
                log.warning("dispatcher lost its LISTEN connection; reconnecting")
                stop.wait(POLL_S)
                listener = _reconnect(listener)


def start_in_background() -> threading.Thread:
    thread = threading.Thread(target=dispatch_forever, kwargs={"stop": threading.Event()},
                              name="outbox-dispatcher", daemon=True)
    thread.start()
    return thread
