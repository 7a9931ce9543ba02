from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    if not Schedule.objects.filter(name="feed-rejection-retention").exists():
        Schedule.objects.create(name="feed-rejection-retention",
                                func="feed_app.tasks.rejections_expire",
                                schedule_type="H", repeats=-1)


def drop_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(
        name="feed-rejection-retention").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("feed_app", "0002_rejections_outside_the_log"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, drop_schedule)]
