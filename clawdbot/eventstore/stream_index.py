"""The stream index: one row per stream, kept by a tracked (follower) projection."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from clawdbot.eventstore.models import StreamIndex
from clawdbot.eventstore.projections import Projection
from clawdbot.eventstore.store import RecordedEvent

_UPSERT = """
INSERT INTO eventstore_stream_index
    (stream_id, version, first_position, last_position, last_type, last_recorded_at)
SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[], %s::text[],
                     %s::timestamptz[])
ON CONFLICT (stream_id) DO UPDATE SET
    version = EXCLUDED.version,
    last_position = EXCLUDED.last_position,
    last_type = EXCLUDED.last_type,
    last_recorded_at = EXCLUDED.last_recorded_at
"""


class StreamIndexProjection(Projection):
    """Every event moves its stream's row forward; a batch is one upsert."""

    name = "stream_index"
    models = (StreamIndex,)
    types = None
    inline = False

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        latest: dict[str, list[object]] = {}
        for e in events:
            row = latest.get(e.stream_id)
            if row is None:
                latest[e.stream_id] = [e.version, e.position, e.position, e.type, e.recorded_at]
            else:
                row[0], row[2], row[3], row[4] = e.version, e.position, e.type, e.recorded_at
        columns = list(zip(*latest.values(), strict=True))
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, [list(latest), *map(list, columns)])
