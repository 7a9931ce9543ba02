from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator_app", "0005_milestone_envelope"),
    ]

    operations = [
        migrations.AddField(
            model_name="target",
            name="supports_batch",
            field=models.BooleanField(
                default=False,
                help_text="Accepts POST <url>/batch (SPEC §10): due backlogs are sent in batches.",
            ),
        ),
    ]
