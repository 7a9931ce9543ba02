from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    if not Schedule.objects.filter(name="orchestrator-outbox-sweep").exists():
        Schedule.objects.create(name="orchestrator-outbox-sweep",
                                func="orchestrator_app.tasks.sweep",
                                schedule_type="I", minutes=1, repeats=-1)


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(
        name="orchestrator-outbox-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator_app", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, drop_schedule)]
