from django.db import migrations

# Many streams' appends in one call, under the same append lock as eventstore_append (so
# gap safety holds for the whole batch): one statement reads every stream's version with a
# fresh snapshot, streams whose expected version does not match are left out, and the rest
# are inserted in input order. ON CONFLICT keeps the unique (stream, version) index the
# final word on duplicates, per stream. Streams are given once each (p_streams,
# p_expected); each event names its stream by a 1-based index into them.
APPEND_BATCH_FUNCTION = """
CREATE FUNCTION eventstore_append_batch(
    p_lock bigint, p_streams text[], p_expected integer[], p_event_stream integer[],
    p_types text[], p_data jsonb[], p_metadata jsonb[]
) RETURNS TABLE (stream_ord integer, new_position bigint, new_version integer,
                 new_recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    RETURN QUERY
        WITH streams AS (
            SELECT s.stream_id, s.ord::integer AS ord, s.expected,
                   coalesce((SELECT max(e.version) FROM eventstore_event e
                             WHERE e.stream_id = s.stream_id), 0) AS current_version
            FROM unnest(p_streams, p_expected) WITH ORDINALITY AS s(stream_id, expected, ord)
        ), admitted AS (
            SELECT * FROM streams
            WHERE expected IS NULL OR expected = current_version
        ), numbered AS (
            SELECT n.ord AS event_ord, n.stream_ord, n.type, n.data, n.metadata,
                   row_number() OVER (PARTITION BY n.stream_ord ORDER BY n.ord)::integer
                       AS offset_in_stream
            FROM unnest(p_event_stream, p_types, p_data, p_metadata)
                 WITH ORDINALITY AS n(stream_ord, type, data, metadata, ord)
        ), inserted AS (
            INSERT INTO eventstore_event AS e (stream_id, version, type, data, metadata)
            SELECT a.stream_id, a.current_version + n.offset_in_stream, n.type, n.data,
                   n.metadata
            FROM numbered n JOIN admitted a ON a.ord = n.stream_ord
            ORDER BY n.event_ord
            ON CONFLICT (stream_id, version) DO NOTHING
            RETURNING e.stream_id, e.position, e.version::integer, e.recorded_at
        )
        SELECT a.ord, i.position, i.version, i.recorded_at
        FROM inserted i JOIN admitted a ON a.stream_id = i.stream_id
        ORDER BY i.position;
END;
$$;
"""

DROP_APPEND_BATCH_FUNCTION = (
    "DROP FUNCTION IF EXISTS eventstore_append_batch("
    "bigint, text[], integer[], integer[], text[], jsonb[], jsonb[]);"
)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0002_append_function")]

    operations = [migrations.RunSQL(APPEND_BATCH_FUNCTION, DROP_APPEND_BATCH_FUNCTION)]
