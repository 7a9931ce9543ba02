"""Small test helpers shared across the suite."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], *, timeout: float = 10.0, what: str = "") -> object:
    """Poll ``condition`` until it is truthy; fail the test when ``timeout`` passes first.

    For conditions another process or thread brings about; the short pause between polls
    only paces the checks, the condition itself decides.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.01)


def waiting_on_lock(kind: str) -> bool:
    """Whether a session of this database waits on a lock of that kind (``advisory``: the
    event store's append lock; ``transactionid``: another transaction's row)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = %s", [kind])
        return cursor.fetchone()[0] > 0
