from __future__ import annotations

from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed_app"
    verbose_name = "Milestone feed"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from clawdbot.eventstore import projections
        from feed_app.projections import FeedProjection

        projections.register(FeedProjection())
        post_spawn.connect(_worker_spawned, dispatch_uid="feed-rejection-retention")


def _worker_spawned(sender: object, proc_name: str, **kwargs: object) -> None:
    from feed_app import tasks

    tasks.retention_schedule_ensure()
