from django.db import migrations, models
import django.db.models.functions.datetime

# The log is append-only by construction: statement-level triggers refuse UPDATE, DELETE
# and TRUNCATE for every role and every path (ORM, raw SQL, psql). Only a superuser can
# get past them, by setting session_replication_role = replica (see the flush command).
APPEND_ONLY = """
CREATE FUNCTION eventstore_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventstore_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Events are immutable; append a compensating event instead.';
END;
$$;
CREATE TRIGGER eventstore_event_no_update_delete
    BEFORE UPDATE OR DELETE ON eventstore_event
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_refuse_change();
CREATE TRIGGER eventstore_event_no_truncate
    BEFORE TRUNCATE ON eventstore_event
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore_refuse_change();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS eventstore_event_no_truncate ON eventstore_event;
DROP TRIGGER IF EXISTS eventstore_event_no_update_delete ON eventstore_event;
DROP FUNCTION IF EXISTS eventstore_refuse_change();
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("position", models.BigAutoField(primary_key=True, serialize=False)),
                ("stream_id", models.CharField(max_length=255)),
                ("version", models.PositiveIntegerField()),
                ("type", models.CharField(max_length=100)),
                ("data", models.JSONField()),
                ("metadata", models.JSONField(default=dict)),
                (
                    "recorded_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={"db_table": "eventstore_event", "ordering": ["position"]},
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("stream_id", "version"), name="event_stream_version"
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["type", "position"], name="event_type_position"),
        ),
        migrations.CreateModel(
            name="ProjectionCheckpoint",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("position", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"db_table": "eventstore_checkpoint"},
        ),
        migrations.CreateModel(
            name="StreamIndex",
            fields=[
                (
                    "stream_id",
                    models.CharField(max_length=255, primary_key=True, serialize=False),
                ),
                ("version", models.PositiveIntegerField()),
                ("first_position", models.BigIntegerField()),
                ("last_position", models.BigIntegerField()),
                ("last_type", models.CharField(max_length=100)),
                ("last_recorded_at", models.DateTimeField()),
            ],
            options={"db_table": "eventstore_stream_index", "verbose_name_plural": "stream index"},
        ),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
