"""``db_grants RUNTIME_ROLE OWNER_ROLE``: print the SQL that gives the runtime role its grants.

For a database set up by hand (docs/OPERATIONS.md, Database roles): run the output as the
owner after each migrate, or let ``migrate`` do it by setting ``DATABASE_OWNER_URL``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clawdbot.dbroles import runtime_grants


class Command(BaseCommand):
    help = "Print the GRANT statements for the runtime database role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("runtime_role")
        parser.add_argument("owner_role")

    def handle(self, *args: Any, runtime_role: str, owner_role: str, **opts: Any) -> None:
        for statement in runtime_grants(runtime_role, owner_role):
            self.stdout.write(statement.as_string(None) + ";")
