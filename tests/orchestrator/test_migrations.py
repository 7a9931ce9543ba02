"""Migrations that carry state across a change of model."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from clawdbot.contract import envelope_bytes
from clawdbot.dbroles import owner_connection
from clawdbot.eventstore import store
from orchestrator_app import events as ev
from orchestrator_app.models import EmittedMilestone
from tests.factories import MilestoneEventFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("orchestrator_app", "0002_sweep_schedule")]


def _migrate(targets=None):
    """Migrate to ``targets``; by default to the latest state (where other tests expect
    the database to be). As the owner, as ``migrate`` does (clawdbot.dbroles)."""
    with owner_connection():
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets or executor.loader.graph.leaf_nodes())


def test_an_older_database_keeps_its_pauses_and_gets_the_envelopes_it_was_sending():
    event = MilestoneEventFactory()
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO orchestrator_milestone (idempotency_key, milestone_id, sent_at_utc,"
                " sent_at, event, context, actor, position) VALUES (%s, %s, %s, %s, %s, '{}',"
                " '', 1)", ["k" * 32, event["milestoneId"], "2026-02-28T12:00:00.000Z",
                            "2026-02-28T12:00:00Z", json.dumps(event)])
        with transaction.atomic():
            for name, *types in [("held", ev.TARGET_PAUSED),
                                 ("back", ev.TARGET_PAUSED, ev.TARGET_RESUMED),
                                 ("again", ev.TARGET_RESUMED, ev.TARGET_PAUSED)]:
                store.append(ev.target_stream(name),
                             [ev.event(t, "ops", target=name, actor="ops", reason=f"{name} {t}")
                              for t in types], expected_version=0)
    finally:
        _migrate()
    with connection.cursor() as cursor:
        cursor.execute("SELECT target, reason, actor FROM orchestrator_target_pause ORDER BY 1")
        rows = cursor.fetchall()
    assert rows == [("again", f"again {ev.TARGET_PAUSED}", "ops"),
                    ("held", f"held {ev.TARGET_PAUSED}", "ops")]
    # What every attempt used to build: the event as PostgreSQL gives it back (JSONB's order).
    row = EmittedMilestone.objects.get()
    sent = {"idempotencyKey": "k" * 32, "sentAtUtc": "2026-02-28T12:00:00.000Z",
            "event": row.event}
    assert row.event == event
    assert row.envelope.encode() == envelope_bytes(sent)
