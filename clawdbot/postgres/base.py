"""Django's PostgreSQL backend, creating and dropping test databases as the owner role.

The app connects as the runtime role (``clawdbot.dbroles``), which may not create
databases or tables: the test database is created, migrated and dropped as the owner, and
the tests then run as the runtime role, as the web server and worker do.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, creation

from clawdbot.dbroles import owner_connection


class DatabaseCreation(creation.DatabaseCreation):
    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        with owner_connection(self.connection.alias):
            return super().create_test_db(*args, **kwargs)

    def destroy_test_db(self, *args: Any, **kwargs: Any) -> None:
        with owner_connection(self.connection.alias):
            super().destroy_test_db(*args, **kwargs)


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
