"""The feed side's projections: the feed and the dead-letter, both applied inline.

Each ``apply`` writes its batch as one multi-row INSERT (``unnest`` of arrays), so a
rebuild of a million milestones is a few hundred statements rather than a million; a batch
of one (the ingest) is one prepared single-row INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import psycopg
from django.db import connection

from clawdbot.contract import js_iso_timestamp, parse_timestamp
from clawdbot.eventstore.projections import Projection
from clawdbot.eventstore.store import RecordedEvent
from feed_app.models import DeadLetter, FeedItem

MILESTONE_ACCEPTED = "feed.milestone_accepted"
INGEST_REJECTED = "feed.ingest_rejected"

_INSERT_ITEMS = """
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                       risk_status, source, event, item, received_at)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::text[],
                     %s::text[], %s::text[], %s::jsonb[], %s::jsonb[], %s::timestamptz[])
"""

_INSERT_DEAD_LETTERS = """
INSERT INTO feed_dead_letter (position, recorded_at, http_status, reason_code, reason, errors,
                              idempotency_key, scheme, remote_addr, body_sha256, body_bytes,
                              body_excerpt)
SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::int[], %s::text[], %s::text[],
                     %s::jsonb[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::bigint[], %s::text[])
"""


_INSERT_ONE_ITEM = """
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                       risk_status, source, event, item, received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)
"""


def _insert(sql: str, rows: list[tuple[object, ...]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])


def _insert_one_item(row: tuple[object, ...]) -> None:
    # The ingest's hot path: scalar parameters dump faster than nine one-element arrays, and
    # a prepared statement (plain psycopg cursor, as the event store does) skips planning.
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_ONE_ITEM, row, prepare=True)


class FeedProjection(Projection):
    """``feed.milestone_accepted`` -> one ``feed_item`` row."""

    name = "feed"
    models = (FeedItem,)
    types = frozenset({MILESTONE_ACCEPTED})

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        rows = [self.row(e) for e in events]
        if len(rows) == 1:
            _insert_one_item(rows[0])
        else:
            _insert(_INSERT_ITEMS, rows)

    @staticmethod
    def row(event: RecordedEvent) -> tuple[object, ...]:
        milestone = event.data["event"]
        item = {
            **milestone,
            "position": event.position,
            "idempotencyKey": event.data["idempotencyKey"],
            "receivedAtUtc": js_iso_timestamp(event.recorded_at),
        }
        return (
            event.position,
            event.data["idempotencyKey"],
            milestone["milestoneId"],
            parse_timestamp(milestone["timestampUtc"]),
            milestone["scope"],
            milestone["riskStatus"],
            milestone.get("source", "orchestrator"),
            json.dumps(milestone),
            json.dumps(item),
            event.recorded_at,
        )


class DeadLetterProjection(Projection):
    """``feed.ingest_rejected`` -> one ``feed_dead_letter`` row."""

    name = "feed_dead_letter"
    models = (DeadLetter,)
    types = frozenset({INGEST_REJECTED})

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        _insert(_INSERT_DEAD_LETTERS, [self.row(e) for e in events])

    @staticmethod
    def row(event: RecordedEvent) -> tuple[object, ...]:
        data = event.data
        return (
            event.position,
            event.recorded_at,
            data["httpStatus"],
            data["reasonCode"],
            data["reason"],
            json.dumps(data.get("errors") or {}),
            data.get("idempotencyKey") or "",
            data["scheme"],
            data.get("remoteAddr") or "",
            data["bodySha256"],
            data["bodyBytes"],
            data.get("bodyExcerpt") or "",
        )
