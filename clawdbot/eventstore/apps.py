from __future__ import annotations

from django.apps import AppConfig


class EventStoreConfig(AppConfig):
    name = "clawdbot.eventstore"
    label = "eventstore"
    verbose_name = "Event store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clawdbot.eventstore import projections
        from clawdbot.eventstore.stream_index import StreamIndexProjection

        projections.register(StreamIndexProjection())
