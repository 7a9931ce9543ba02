"""NOTIFY clawdbot_feed with the last position each statement stored in feed_item.

Sent inside the storing transaction, so PostgreSQL delivers it at commit and never for a
rollback; one notification per statement (a batch ingest or a rebuild sends one per
statement, not one per row). feed_app/live.py listens.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION feed_item_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clawdbot_feed', (SELECT max(position)::text FROM stored));
    RETURN NULL;
END $$;
CREATE TRIGGER feed_item_notify AFTER INSERT ON feed_item
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION feed_item_notify();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS feed_item_notify ON feed_item;
DROP FUNCTION IF EXISTS feed_item_notify();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("feed_app", "0004_feed_item_received_index"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
