from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("feed_app", "0003_rejection_retention_schedule"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="feeditem",
            index=models.Index(fields=["received_at"], name="feed_item_received"),
        ),
    ]
