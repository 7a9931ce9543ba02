from django.db import migrations

CHECKPOINT = "orchestrator-milestone-log"


def start_at_log_end(apps, schema_editor):
    """The JSONL log already holds every milestone emitted before this migration (they were
    written by the emit itself): the follower starts after them."""
    Checkpoint = apps.get_model("eventstore", "ProjectionCheckpoint")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(position), 0) FROM eventstore_event")
        position = cursor.fetchone()[0]
    Checkpoint.objects.update_or_create(name=CHECKPOINT, defaults={"position": position})


def drop_checkpoint(apps, schema_editor):
    apps.get_model("eventstore", "ProjectionCheckpoint").objects.filter(
        name=CHECKPOINT).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator_app", "0002_sweep_schedule"),
        ("eventstore", "0001_initial"),
    ]

    operations = [migrations.RunPython(start_at_log_end, drop_checkpoint)]
