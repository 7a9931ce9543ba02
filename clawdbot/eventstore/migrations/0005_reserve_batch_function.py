from django.db import migrations

# The first half of a large append_batch (store._append_copy): under the same append lock
# as the other appends, read every stream's version with a fresh snapshot and reserve one
# position for each event of the streams whose expected version matches. The events are
# then COPYed into eventstore_event with those positions and versions; the unique
# (stream, version) index still has the final word (a violation falls back to
# eventstore_append_batch, which decides per stream).
RESERVE_FUNCTION = """
CREATE FUNCTION eventstore_reserve_batch(
    p_lock bigint, p_streams text[], p_expected integer[], p_event_stream integer[]
) RETURNS TABLE (current_versions integer[], positions bigint[], reserved_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_current integer[];
    v_admitted integer;
    v_sequence regclass := pg_get_serial_sequence('eventstore_event', 'position')::regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT array_agg(coalesce((SELECT max(e.version) FROM eventstore_event e
                               WHERE e.stream_id = s.stream_id), 0) ORDER BY s.ord)
        INTO v_current
        FROM unnest(p_streams) WITH ORDINALITY AS s(stream_id, ord);
    SELECT count(*) INTO v_admitted
        FROM unnest(p_event_stream) AS n(stream_ord)
        WHERE p_expected[n.stream_ord] IS NULL OR p_expected[n.stream_ord] = v_current[n.stream_ord];
    RETURN QUERY SELECT v_current,
        ARRAY(SELECT nextval(v_sequence) FROM generate_series(1, v_admitted) AS g ORDER BY g),
        now();
END;
$$;
"""

DROP_RESERVE_FUNCTION = (
    "DROP FUNCTION IF EXISTS eventstore_reserve_batch(bigint, text[], integer[], integer[]);"
)


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0004_append_batch_custom_plans")]

    operations = [migrations.RunSQL(RESERVE_FUNCTION, DROP_RESERVE_FUNCTION)]
