"""The database itself refuses to change or remove events, whatever the client does.

The app's role is refused by its grants ("permission denied", tests/eventstore/
test_privileges.py); a role with every privilege on the table by the triggers.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.models import Event
from clawdbot.eventstore.store import Expect, NewEvent

pytestmark = pytest.mark.django_db
REFUSED = "append-only|permission denied"


@pytest.fixture
def recorded():
    with transaction.atomic():
        return store.append("s", [NewEvent("made", {"v": 1})], expected_version=Expect.NO_STREAM)[0]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE eventstore_event SET data = '{\"v\": 2}'",
        "UPDATE eventstore_event SET type = 'x' WHERE position = -1",
        "DELETE FROM eventstore_event",
        "TRUNCATE eventstore_event",
        "TRUNCATE eventstore_event CASCADE",
    ],
)
def test_raw_sql_cannot_change_or_remove_events(recorded, sql):
    with (
        pytest.raises(DatabaseError, match=REFUSED),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert Event.objects.get(position=recorded.position).data == {"v": 1}


def test_orm_delete_and_update_are_refused(recorded):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        Event.objects.all().delete()
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        Event.objects.update(type="changed")
    assert Event.objects.get().type == "made"
