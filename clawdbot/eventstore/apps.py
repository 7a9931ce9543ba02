from __future__ import annotations

from django.apps import AppConfig


class EventStoreConfig(AppConfig):
    name = "clawdbot.eventstore"
    label = "eventstore"
    verbose_name = "Event store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from clawdbot import dbroles
        from clawdbot.eventstore import projections
        from clawdbot.eventstore.stream_index import StreamIndexProjection

        projections.register(StreamIndexProjection())
        # After the whole plan ran (post_migrate is sent once per app, after all of it).
        post_migrate.connect(dbroles.grant_after_migrate, sender=self,
                             dispatch_uid="clawdbot.dbroles.grants")
