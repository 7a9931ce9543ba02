"""Two database roles: the *owner* migrates, the *runtime* role serves.

The event log's triggers refuse UPDATE, DELETE and TRUNCATE, but a table's owner can
disable triggers, so the web server and the worker must not connect as the owner. They
connect as ``DATABASES["default"]`` (the runtime role); ``migrate``, ``flush`` and test
database set-up switch that connection to ``settings.DATABASE_OWNER`` (the owner's user,
password, host and port, same database) for their duration, then grant the runtime role
what it needs (``runtime_grants``): every privilege on the other tables, SELECT and INSERT
only on the event log, and the same by default on tables the owner creates later.

Embedded PostgreSQL: the owner is ``postgres`` and the runtime role ``clawdbot_app``, set up
by ``clawdbot.embedded_pg.server``. With ``DATABASE_URL``, ``DATABASE_OWNER_URL`` names the
owner (docs/OPERATIONS.md gives the same GRANTs to run by hand); without it both are the
same role and the ``clawdbot.W001`` check says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

#: The append-only table: the runtime role may only read and append.
EVENT_TABLE = "eventstore_event"
#: The settings keys the owner connection replaces (the database stays the same).
OWNER_KEYS = ("USER", "PASSWORD", "HOST", "PORT")


def owner_overrides() -> dict[str, Any]:
    """The owner's connection settings that differ from the runtime role's ({} if none)."""
    owner = getattr(settings, "DATABASE_OWNER", None) or {}
    return {key: owner[key] for key in OWNER_KEYS if key in owner}


#: alias -> the runtime role's settings while ``owner_connection`` has replaced them.
_switched: dict[str, dict[str, Any]] = {}


def runtime_user(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The role name the web server and worker connect as ("" if libpq's default)."""
    current = _switched.get(alias) or connections[alias].settings_dict
    return str(current.get("USER") or "")


@contextmanager
def owner_connection(alias: str = DEFAULT_DB_ALIAS) -> Iterator[BaseDatabaseWrapper]:
    """Run the block on ``alias`` connected as the owner; the runtime role again afterwards.

    A no-op when no separate owner is configured. Not inside a transaction: the connection
    is closed and reopened with the owner's credentials.
    """
    connection = connections[alias]
    overrides = owner_overrides()
    if not overrides or all(connection.settings_dict.get(k) == v for k, v in overrides.items()):
        yield connection
        return
    if connection.in_atomic_block:
        raise RuntimeError("owner_connection() cannot switch roles inside a transaction")
    saved = {key: connection.settings_dict.get(key) for key in overrides}
    connection.close()
    connection.settings_dict.update(overrides)
    _switched[alias] = saved
    try:
        yield connection
    finally:
        connection.close()
        connection.settings_dict.update(saved)
        del _switched[alias]


def runtime_grants(runtime: str, owner: str, schema: str = "public") -> list[sql.Composed]:
    """The statements that give ``runtime`` what the web server and worker need.

    Run by the owner (or a superuser) after every migrate. docs/OPERATIONS.md prints them
    (``python manage.py db_grants``), for databases whose owner is not this app's.
    """
    r, o, s = sql.Identifier(runtime), sql.Identifier(owner), sql.Identifier(schema)
    table = sql.Identifier(schema, EVENT_TABLE)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {}"
                " TO {}").format(s, r),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, r),
        sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(table, r),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT, INSERT,"
                " UPDATE, DELETE, TRUNCATE ON TABLES TO {}").format(o, s, r),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT"
                " ON SEQUENCES TO {}").format(o, s, r),
    ]


def apply_runtime_grants(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Grant the runtime role its privileges, on a connection opened as the owner.

    Returns False (and does nothing) when the connection's role is the runtime role itself:
    there is no separate owner to grant from.
    """
    connection = connections[alias]
    runtime = runtime_user(alias)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (current,) = cursor.fetchone()
        if not runtime or runtime == current:
            return False
        for statement in runtime_grants(runtime, current):
            cursor.execute(statement.as_string(cursor.connection))
    return True


def grant_after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **_: Any) -> None:
    """post_migrate receiver (eventstore app): all migrations of the run are applied."""
    apply_runtime_grants(using)


@checks.register(checks.Tags.database)
def check_runtime_role(databases: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """W001: the runtime role owns the event log or is a superuser (it could rewrite it)."""
    if not databases or DEFAULT_DB_ALIAS not in databases:
        return []
    connection = connections[DEFAULT_DB_ALIAS]
    role = runtime_user() or None  # libpq's default user when unset: the session's
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname, r.rolsuper, t.tableowner FROM pg_roles r"
            " LEFT JOIN pg_tables t ON t.tablename = %s AND t.schemaname = 'public'"
            " WHERE r.rolname = coalesce(%s, session_user)",
            [EVENT_TABLE, role],
        )
        row = cursor.fetchone()
    if row is None:
        return []
    name, superuser, owner = row
    if not superuser and owner != name:
        return []
    why = "is a superuser" if superuser else f"owns {EVENT_TABLE}"
    return [
        checks.Warning(
            f"The database role the app runs as ({name}) {why}: it can disable the event "
            "log's append-only triggers.",
            hint="Connect DATABASE_URL as a role with only the grants of docs/OPERATIONS.md "
            "(Database roles) and set DATABASE_OWNER_URL to the owner, for migrations.",
            id="clawdbot.W001",
        )
    ]
