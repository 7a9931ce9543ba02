from django.db import migrations, models

from clawdbot.contract import envelope_bytes


def fill(apps, schema_editor):
    # The bytes every attempt of these milestones has been sending, built as it built them
    # (and as the projection does for events recorded before the envelope was stored).
    EmittedMilestone = apps.get_model("orchestrator_app", "EmittedMilestone")
    batch = []
    for row in EmittedMilestone.objects.order_by("pk").iterator(chunk_size=1000):
        row.envelope = envelope_bytes({"idempotencyKey": row.idempotency_key,
                                       "sentAtUtc": row.sent_at_utc,
                                       "event": row.event}).decode("utf-8")
        batch.append(row)
        if len(batch) == 1000:
            EmittedMilestone.objects.bulk_update(batch, ["envelope"])
            batch = []
    EmittedMilestone.objects.bulk_update(batch, ["envelope"])


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator_app", "0004_target_pause"),
    ]

    operations = [
        migrations.AddField(
            model_name="emittedmilestone",
            name="envelope",
            field=models.TextField(
                default="",
                help_text="The envelope exactly as every attempt sends it (UTF-8 JSON).",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
