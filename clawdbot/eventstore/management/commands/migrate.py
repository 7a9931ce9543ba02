"""``migrate`` as the database owner (``clawdbot.dbroles``), then the runtime role's grants.

The app's connection is the runtime role, which may not create or alter tables; this
command switches it to ``settings.DATABASE_OWNER`` for the run. The grants are applied by
the eventstore app's post_migrate receiver, still as the owner.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate

from clawdbot.dbroles import owner_connection


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with owner_connection(options["database"]):
            super().handle(*args, **options)
