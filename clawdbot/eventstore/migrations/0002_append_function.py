from django.db import migrations

# The append path in one server-side function: one round trip, cached plans, and each
# statement with a fresh snapshot taken after the append lock is granted (so the version
# check sees every append that committed while this one waited).
APPEND_FUNCTION = """
CREATE FUNCTION eventstore_append(
    p_lock bigint, p_stream text, p_types text[], p_data jsonb[], p_metadata jsonb[],
    p_expected integer
) RETURNS TABLE (new_position bigint, new_version integer, new_recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_version integer;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT coalesce(max(e.version), 0) INTO current_version
        FROM eventstore_event e WHERE e.stream_id = p_stream;
    IF p_expected IS NOT NULL AND current_version <> p_expected THEN
        RETURN;
    END IF;
    RETURN QUERY
        INSERT INTO eventstore_event AS e (stream_id, version, type, data, metadata)
        SELECT p_stream, current_version + n.ord::integer, n.type, n.data, n.metadata
        FROM unnest(p_types, p_data, p_metadata) WITH ORDINALITY AS n(type, data, metadata, ord)
        ORDER BY n.ord
        ON CONFLICT (stream_id, version) DO NOTHING
        RETURNING e.position, e.version::integer, e.recorded_at;
END;
$$;
"""

DROP_APPEND_FUNCTION = (
    "DROP FUNCTION IF EXISTS eventstore_append(bigint, text, text[], jsonb[], jsonb[], integer);"
)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0001_initial")]

    operations = [migrations.RunSQL(APPEND_FUNCTION, DROP_APPEND_FUNCTION)]
