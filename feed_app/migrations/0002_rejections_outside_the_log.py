"""Rejections leave the event log: a bounded, expiring table written without the append lock.

``feed_dead_letter`` (a projection of ``feed.ingest_rejected`` events) becomes
``feed_rejection``, written directly by the ingest. Existing rows are copied (their id is
the old log position, so the API's order is kept); the old events stay in the log.
"""

from django.db import migrations, models

COPY = """
INSERT INTO feed_rejection (id, recorded_at, last_at, count, aggregate, window_start,
                            http_status, reason_code, reason, errors, idempotency_key, scheme,
                            remote_addr, body_sha256, body_bytes, body_excerpt)
SELECT position, recorded_at, recorded_at, 1, false, NULL, http_status, reason_code, reason,
       errors, idempotency_key, scheme, remote_addr, body_sha256, body_bytes, body_excerpt
FROM feed_dead_letter;
SELECT setval(pg_get_serial_sequence('feed_rejection', 'id'),
              (SELECT coalesce(max(id), 0) + 1 FROM feed_rejection), false);
"""


class Migration(migrations.Migration):
    dependencies = [("feed_app", "0001_initial")]

    operations = [
        migrations.RenameModel("DeadLetter", "LegacyDeadLetter"),
        migrations.CreateModel(
            name="DeadLetter",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("recorded_at", models.DateTimeField()),
                ("last_at", models.DateTimeField()),
                ("count", models.PositiveIntegerField(default=1)),
                ("aggregate", models.BooleanField(default=False)),
                ("window_start", models.DateTimeField(blank=True, null=True)),
                ("http_status", models.PositiveSmallIntegerField()),
                ("reason_code", models.CharField(max_length=40)),
                ("reason", models.TextField()),
                ("errors", models.JSONField(default=dict)),
                ("idempotency_key", models.CharField(blank=True, max_length=200)),
                ("scheme", models.CharField(max_length=20)),
                ("remote_addr", models.CharField(blank=True, max_length=64)),
                ("body_sha256", models.CharField(max_length=64)),
                ("body_bytes", models.BigIntegerField()),
                ("body_excerpt", models.TextField(blank=True)),
            ],
            options={
                "db_table": "feed_rejection",
                "ordering": ["-id"],
                "indexes": [
                    models.Index(fields=["reason_code", "-id"], name="feed_rejection_reason"),
                    models.Index(fields=["idempotency_key"], name="feed_rejection_key"),
                    models.Index(fields=["last_at"], name="feed_rejection_last_at"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("aggregate", True)),
                        fields=("remote_addr", "window_start", "reason_code"),
                        name="feed_rejection_one_aggregate",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RejectionWindow",
            fields=[
                ("pk", models.CompositePrimaryKey("remote_addr", "minute", blank=True,
                                                  editable=False, primary_key=True,
                                                  serialize=False)),
                ("remote_addr", models.CharField(max_length=64)),
                ("minute", models.DateTimeField()),
                ("hits", models.PositiveIntegerField()),
            ],
            options={
                "db_table": "feed_rejection_window",
                "indexes": [models.Index(fields=["minute"], name="feed_rejection_window_minute")],
            },
        ),
        migrations.RunSQL(COPY, migrations.RunSQL.noop),
        migrations.DeleteModel("LegacyDeadLetter"),
    ]
