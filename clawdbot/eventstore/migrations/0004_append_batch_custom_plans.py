from django.db import migrations

# eventstore_append_batch's statement is planned for the arrays it is given: with a cached
# generic plan (plpgsql switches to one after five calls) PostgreSQL misjudges how many
# events and streams arrive, and a call of 4,000 events took four times as long.
SIGNATURE = "eventstore_append_batch(bigint, text[], integer[], integer[], text[], jsonb[], jsonb[])"


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0003_append_batch_function")]

    operations = [migrations.RunSQL(
        f"ALTER FUNCTION {SIGNATURE} SET plan_cache_mode = force_custom_plan;",
        f"ALTER FUNCTION {SIGNATURE} RESET plan_cache_mode;",
    )]
