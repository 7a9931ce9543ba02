"""The feed side's projection: the feed, applied inline.

(Ingest rejections are not events: ``feed_app.services.rejection_record`` writes them to
their own bounded table, see docs/ARCHITECTURE.md. Logs from before that change still hold
``feed.ingest_rejected`` events, which no projection reads any more.)

Each ``apply`` writes its batch as one multi-row INSERT (rows as one JSON text), so a
rebuild of a million milestones is a few hundred statements rather than a million; a batch
of one (the ingest) is one prepared single-row INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import psycopg
from django.db import connection

from clawdbot.contract import js_iso_timestamp, parse_timestamp
from clawdbot.eventstore.projections import Projection
from clawdbot.eventstore.store import RecordedEvent
from feed_app.models import FeedItem

MILESTONE_ACCEPTED = "feed.milestone_accepted"

# A batch's rows travel as one JSON text (an array of arrays, built by the C encoder in
# one call) that PostgreSQL takes apart: psycopg dumps a list of strings as an array literal
# in Python, escaping each element with a regular expression, which was most of a 1,000-item
# batch ingest's time (the event store sends its events the same way, store.py).
_INSERT_ITEMS = """
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                       risk_status, source, event, item, received_at)
SELECT (r->>0)::bigint, r->>1, r->>2, (r->>3)::timestamptz, r->>4, r->>5, r->>6, r->7,
       r->7 || jsonb_build_object(
           'idempotencyKey', r->1, 'position', (r->>0)::bigint,
           'receivedAtUtc', to_char((r->>8)::timestamptz AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
       (r->>8)::timestamptz
FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(r, o) ORDER BY o
"""

_INSERT_ONE_ITEM = """
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                       risk_status, source, event, item, received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)
"""


# The ingest of one accepted milestone in one statement (one round trip, in autocommit its
# own transaction): the event store's append (eventstore_append: append lock, stream version
# check, insert) and this projection's feed row, built from the appended event's position
# and time. The same row ``FeedProjection.row`` builds on a rebuild: the event is the data's
# ``event``, the stored item is the event plus ``idempotencyKey`` and ``position``/
# ``receivedAtUtc`` (``receivedAtUtc`` in js_iso_timestamp's form, milliseconds truncated),
# all taken from the one ``data`` sent. No row comes back when the stream exists already: a
# duplicate, decided by the store's unique index.
ACCEPT_ONE = """
WITH given AS MATERIALIZED (SELECT %(data)s::jsonb AS data),
appended AS (
    SELECT * FROM eventstore_append(%(lock)s, %(stream)s, ARRAY[%(type)s]::text[],
                                    ARRAY(SELECT data FROM given),
                                    ARRAY[%(metadata)s::jsonb], 0)
)
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                       risk_status, source, event, item, received_at)
SELECT new_position, g.data->>'idempotencyKey', g.data->'event'->>'milestoneId',
       %(timestamp)s, g.data->'event'->>'scope', g.data->'event'->>'riskStatus',
       coalesce(g.data->'event'->>'source', 'orchestrator'), g.data->'event',
       g.data->'event' || jsonb_build_object(
           'idempotencyKey', g.data->'idempotencyKey',
           'position', new_position,
           'receivedAtUtc', to_char(new_recorded_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
       new_recorded_at
FROM appended, given g
RETURNING position, received_at
"""


# ``ACCEPT_ONE`` for many accepted milestones of different keys in one statement: the event
# store's eventstore_append_batch (the append lock taken once, each stream checked alone,
# a stream that exists already left out: a duplicate) and the feed rows of those it
# appended, each as ``ACCEPT_ONE`` builds it; the event and the item come from the event's
# data here rather than being sent twice more. Items travel as one JSON array of
# [data, metadata, timestamp]; the rows returned name the keys that were appended.
ACCEPT_MANY = """
WITH given AS MATERIALIZED (
    SELECT t.o::integer AS o, t.x->0 AS data, t.x->1 AS metadata, (t.x->>2)::timestamptz AS ts
    FROM jsonb_array_elements(%(items)s::jsonb) WITH ORDINALITY AS t(x, o)
), appended AS (
    SELECT * FROM eventstore_append_batch(
        %(lock)s, %(streams)s::text[], %(expected)s::integer[], %(event_stream)s::integer[],
        %(types)s::text[], ARRAY(SELECT data FROM given ORDER BY o),
        ARRAY(SELECT metadata FROM given ORDER BY o))
)
INSERT INTO feed_item (position, idempotency_key, milestone_id, timestamp, scope,
                       risk_status, source, event, item, received_at)
SELECT a.new_position, g.data->>'idempotencyKey', g.data->'event'->>'milestoneId', g.ts,
       g.data->'event'->>'scope', g.data->'event'->>'riskStatus',
       coalesce(g.data->'event'->>'source', 'orchestrator'), g.data->'event',
       g.data->'event' || jsonb_build_object(
           'idempotencyKey', g.data->'idempotencyKey',
           'position', a.new_position,
           'receivedAtUtc', to_char(a.new_recorded_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
       a.new_recorded_at
FROM appended a JOIN given g ON g.o = a.stream_ord
ORDER BY a.new_position
RETURNING idempotency_key, position, received_at
"""


def accept_many_params(
    *, lock: int, items: Sequence[tuple[str, dict[str, object], dict[str, object], datetime]],
) -> dict[str, object]:
    """The parameters of ``ACCEPT_MANY`` for (stream, data, metadata, timestamp) items of
    new streams, in input order; the timestamp is the event's ``timestampUtc`` parsed."""
    n = len(items)
    return {"items": json.dumps([[d, m, t.isoformat()] for _s, d, m, t in items]),
            "lock": lock, "streams": [stream for stream, *_rest in items],
            "expected": [0] * n, "event_stream": list(range(1, n + 1)),
            "types": [MILESTONE_ACCEPTED] * n}


def accept_one_params(
    *, lock: int, stream_id: str, data: dict[str, object], metadata: dict[str, object],
    timestamp: datetime,
) -> dict[str, object]:
    """The parameters of ``ACCEPT_ONE`` for a ``feed.milestone_accepted`` event's data; the
    timestamp is the event's ``timestampUtc`` parsed."""
    return {"lock": lock, "stream": stream_id, "type": MILESTONE_ACCEPTED,
            "data": json.dumps(data), "metadata": json.dumps(metadata), "timestamp": timestamp}


def _insert_items(rows: list[tuple[object, ...]]) -> None:
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_INSERT_ITEMS, [json.dumps(rows, default=_iso)])


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a feed row")


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
        if len(events) == 1:
            row = self.row(events[0])
            _insert_one_item((*row[:7], json.dumps(row[7]), json.dumps(row[8]), row[9]))
        else:
            # The item is built in SQL from the event, as ACCEPT_ONE builds it: the
            # milestone is encoded once per row, not twice.
            _insert_items([(e.position, e.data["idempotencyKey"], m["milestoneId"],
                            parse_timestamp(m["timestampUtc"]), m["scope"], m["riskStatus"],
                            m.get("source", "orchestrator"), m, e.recorded_at)
                           for e in events for m in (e.data["event"],)])

    @staticmethod
    def row(event: RecordedEvent) -> tuple[object, ...]:
        """The feed row of an event, the event and the item as objects."""
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
            milestone,
            item,
            event.recorded_at,
        )
