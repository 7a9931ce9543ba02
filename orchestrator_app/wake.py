"""Waking the delivery dispatchers: PostgreSQL NOTIFY, delivered when the sender commits."""

from __future__ import annotations

from django.db import connection

#: The channel every dispatcher LISTENs on (see ``dispatcher.py``).
WAKE_CHANNEL = "clawdbot_outbox"


def outbox_wake() -> None:
    """Wake the dispatchers when the current transaction commits (NOTIFY is transactional)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [WAKE_CHANNEL])
