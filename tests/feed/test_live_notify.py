"""The NOTIFY that wakes every web process's live listener (feed_app/live.py): sent by the
transaction that stores a milestone, at its commit, and by nothing else."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from clawdbot import asyncdb
from feed_app import live
from feed_app.models import FeedItem
from tests.factories import EnvelopeFactory
from tests.feed.conftest import IngestClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener():
    conn = psycopg.connect(**asyncdb.connection_kwargs())
    conn.execute(f"LISTEN {live.CHANNEL}")
    yield conn
    conn.close()


def _notified(conn: psycopg.Connection, timeout: float) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=timeout)]


def test_an_accepted_milestone_notifies_its_position_and_a_duplicate_nothing(listener):
    client = IngestClient()
    envelope = EnvelopeFactory()
    assert client.send(envelope).json()["status"] == "accepted"
    position = FeedItem.objects.get().position
    assert _notified(listener, 2) == [str(position)]
    assert client.send(envelope).json()["status"] == "duplicate"
    assert client.post(b"{}", {}).status_code == 401  # a rejection is not a milestone
    assert _notified(listener, 0.5) == []


def test_nothing_is_notified_before_the_commit_or_for_a_rollback(listener):
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        _store_rows(101, 101)
        assert _notified(listener, 0.5) == []  # stored, not committed: nobody is woken
        raise Abandon
    assert FeedItem.objects.count() == 0
    assert _notified(listener, 0.5) == []


def test_one_statement_storing_many_rows_notifies_once_with_the_last(listener):
    _store_rows(101, 103)
    assert _notified(listener, 2) == ["103"]


def _store_rows(first: int, last: int) -> None:
    """Feed rows at positions first..last in one statement (as a rebuild writes them)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                                   risk_status, source, event, item, received_at)
            SELECT p, 'k' || p, 'm', now(), 's', 'on_track', 'system', '{}', '{}', now()
            FROM generate_series(%s, %s) AS p""", [first, last])
