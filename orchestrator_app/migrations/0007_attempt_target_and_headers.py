from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator_app", "0006_target_supports_batch"),
    ]

    operations = [
        migrations.AddField(
            model_name="deliveryattempt",
            name="target",
            field=models.CharField(blank=True, help_text="Its delivery's target.",
                                   max_length=100),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="request_headers",
            field=models.JSONField(blank=True, default=dict,
                                   help_text="As sent, signatures shortened (headers.py)."),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="response_headers",
            field=models.JSONField(blank=True, default=dict),
        ),
        # What the projection now writes with each attempt (events recorded before this
        # carry no headers: those attempts show none).
        migrations.RunSQL(
            "UPDATE orchestrator_delivery_attempt a SET target = d.target "
            "FROM orchestrator_delivery d WHERE d.id = a.delivery_id",
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name="deliveryattempt",
            index=models.Index(fields=["target", "attempted_at"], name="attempt_target_time"),
        ),
        migrations.AddIndex(
            model_name="deliveryattempt",
            index=models.Index(fields=["attempted_at"], name="attempt_time"),
        ),
    ]
