"""A database that cannot be reached gives 503 with Retry-After and stores nothing."""

from __future__ import annotations

import copy

import pytest
from django.db import connection

from clawdbot.eventstore import store
from tests.feed.conftest import IngestClient
from tests.feed.factories import signed


def _reconnect_with(settings_dict: dict) -> None:
    connection.close()
    if getattr(connection, "pool", None):
        connection.close_pool()  # the next connection builds a pool from the new settings
    connection.settings_dict.clear()
    connection.settings_dict.update(settings_dict)


def _unreachable(settings_dict: dict) -> dict:
    broken = copy.deepcopy(settings_dict)
    broken["PORT"] = "1"  # nothing listens there (TCP or Unix socket)
    if isinstance(broken.get("OPTIONS", {}).get("pool"), dict):
        broken["OPTIONS"]["pool"]["timeout"] = 1  # fail fast instead of waiting 10 s
    return broken


@pytest.fixture
def database_down(transactional_db):
    saved = copy.deepcopy(connection.settings_dict)
    _reconnect_with(_unreachable(saved))
    yield
    _reconnect_with(saved)


def test_unreachable_database_gives_503_with_retry_after(database_down):
    response = IngestClient().post(*signed())
    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    # SPEC §4: the same shape as every other refusal.
    assert body == {"ok": False, "status": "rejected", "reason": body["reason"]}
    assert body["reason"]


def test_rejection_during_an_outage_gives_503_too(database_down):
    assert IngestClient().post(b"{}", {}).status_code == 503


def test_outage_leaves_no_event_behind(transactional_db):
    events_before = store.count()
    saved = copy.deepcopy(connection.settings_dict)
    _reconnect_with(_unreachable(saved))
    try:
        IngestClient().post(*signed())
    finally:
        _reconnect_with(saved)
    assert store.count() == events_before
