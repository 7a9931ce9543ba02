"""The app's database role can read and append the event log, and nothing more to it.

The triggers of tests/eventstore/test_immutability.py stop a role that may change the
table; only privileges stop its owner, who can disable triggers. The web server, the worker
and these tests connect as the runtime role (clawdbot.dbroles).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from clawdbot import dbroles
from clawdbot.eventstore import store
from clawdbot.eventstore.models import Event
from clawdbot.eventstore.store import Expect, NewEvent

pytestmark = pytest.mark.django_db
BASE_DIR = Path(__file__).resolve().parents[2]

#: What a role owning the table could do to get past the triggers, or around them.
FORBIDDEN = [
    "UPDATE eventstore_event SET data = '{\"v\": 2}'",
    "DELETE FROM eventstore_event",
    "TRUNCATE eventstore_event",
    "ALTER TABLE eventstore_event DISABLE TRIGGER ALL",
    "ALTER TABLE eventstore_event DISABLE TRIGGER eventstore_event_no_update_delete",
    "DROP TRIGGER eventstore_event_no_update_delete ON eventstore_event",
    "CREATE OR REPLACE FUNCTION eventstore_refuse_change() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$",
    "ALTER TABLE eventstore_event OWNER TO CURRENT_USER",
    "DROP TABLE eventstore_event CASCADE",
    "SET session_replication_role = replica",
    "CREATE TABLE eventstore_shadow (id int)",
]


def _owner_or_superuser() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper OR t.tableowner = current_user FROM pg_roles r, pg_tables t"
            " WHERE r.rolname = current_user AND t.tablename = %s", [dbroles.EVENT_TABLE])
        return bool(cursor.fetchone()[0])


@pytest.fixture
def as_runtime_role():
    """Run the test as a role holding exactly the runtime grants.

    With the embedded default that is the app's own connection. A ``DATABASE_URL`` whose
    role owns the table (the superuser of CI's second run) gets a role made for the test,
    granted by ``dbroles.runtime_grants`` and assumed with SET LOCAL ROLE; the test's
    transaction rolls both back.
    """
    if not _owner_or_superuser():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
        probe = "clawdbot_runtime_probe"
        cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(probe))
                       .as_string(None))
        for statement in dbroles.runtime_grants(probe, owner):
            cursor.execute(statement.as_string(None))
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(probe)).as_string(None))
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


@pytest.fixture
def recorded():
    with transaction.atomic():
        return store.append("s", [NewEvent("made", {"v": 1})], expected_version=Expect.NO_STREAM)[0]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_runtime_role_cannot_change_the_log_or_switch_its_triggers_off(
    recorded, as_runtime_role, statement
):
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert refused.value.__cause__.sqlstate == "42501", refused.value  # insufficient_privilege
    assert Event.objects.get(position=recorded.position).data == {"v": 1}


def test_the_runtime_role_appends_and_reads(as_runtime_role):
    with transaction.atomic():
        appended = store.append("s", [NewEvent("made", {"v": 1})], expected_version=0)
    assert [e.data for e in store.read_stream("s")] == [{"v": 1}]
    assert appended[0].version == 1


@pytest.mark.skipif(not settings.EMBEDDED_DATABASE,
                    reason="with DATABASE_URL the roles are the operator's choice")
def test_the_embedded_default_connects_the_app_as_a_role_that_owns_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        user, superuser = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
                       " WHERE r.rolname = current_user")
        (owned,) = cursor.fetchone()
    assert (user, superuser, owned) == ("clawdbot_app", False, 0)


def _runtime_role_warnings() -> list[str]:
    return [m.id for m in checks.run_checks(databases=["default"]) if m.id == "clawdbot.W001"]


def test_the_check_warns_exactly_when_the_runtime_role_could_rewrite_the_log(monkeypatch):
    expected = ["clawdbot.W001"] if _owner_or_superuser() else []
    assert _runtime_role_warnings() == expected
    # The embedded owner, or CI's superuser, as the configured runtime role: warned.
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s",
                       [dbroles.EVENT_TABLE])
        owner = cursor.fetchone()[0]
    monkeypatch.setitem(connection.settings_dict, "USER", owner)
    assert _runtime_role_warnings() == ["clawdbot.W001"]


def test_the_documented_grants_are_the_ones_migrate_applies():
    printed = subprocess.run(
        [sys.executable, "manage.py", "db_grants", "clawdbot_app", "clawdbot_owner"],
        cwd=BASE_DIR, check=True, capture_output=True, text=True,
    ).stdout
    assert printed.count(";") == len(dbroles.runtime_grants("a", "b"))
    operations = (BASE_DIR / "docs" / "OPERATIONS.md").read_text()
    assert printed.strip() in operations
