from __future__ import annotations

from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed_app"
    verbose_name = "Milestone feed"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clawdbot.eventstore import projections
        from feed_app.projections import DeadLetterProjection, FeedProjection

        projections.register(FeedProjection())
        projections.register(DeadLetterProjection())
