"""A database that cannot be reached gives 503 with Retry-After and stores nothing."""

from __future__ import annotations

import pytest
from django.db import connection

from clawdbot.eventstore import store
from tests.feed.conftest import IngestClient
from tests.feed.factories import signed


@pytest.fixture
def database_down(transactional_db):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there (TCP or Unix socket)
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def test_unreachable_database_gives_503_with_retry_after(database_down):
    response = IngestClient().post(*signed())
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["ok"] is False


def test_rejection_during_an_outage_gives_503_too(database_down):
    assert IngestClient().post(b"{}", {}).status_code == 503


def test_outage_leaves_no_event_behind(transactional_db):
    events_before = store.count()
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        IngestClient().post(*signed())
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert store.count() == events_before
