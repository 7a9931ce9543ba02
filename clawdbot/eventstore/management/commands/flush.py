"""``flush``, able to empty the append-only event log too.

Django's flush (also what the test runner uses between transactional tests) TRUNCATEs every
table, which the event log's triggers refuse. Wiping a database is the one sanctioned way
past them: the TRUNCATE runs with ``session_replication_role = replica`` set for its
transaction only, which skips ordinary triggers and which PostgreSQL allows superusers alone.
It runs as the owner (``clawdbot.dbroles``): the app's own role may not empty the log.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections, transaction

from clawdbot.dbroles import owner_connection


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        with owner_connection(database), transaction.atomic(using=database):
            with connections[database].cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
            super().handle(**options)
