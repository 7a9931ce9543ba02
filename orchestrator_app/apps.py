from __future__ import annotations

from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator_app"
    verbose_name = "Orchestrator outbox"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn

        from clawdbot.eventstore import projections
        from clawdbot.permissions import groups_ensure
        from orchestrator_app import checks  # noqa: F401  (registers the system checks)
        from orchestrator_app.projections import OutboxProjection, TargetPauseProjection

        projections.register(OutboxProjection())
        projections.register(TargetPauseProjection())
        # django-q2's hook for "a worker process started": the one place a long-lived
        # dispatcher can live inside the worker (infrastructure, not domain flow).
        post_spawn.connect(_worker_spawned, dispatch_uid="orchestrator-dispatcher")
        # The operators and viewers groups the operator API and the admin are used with.
        post_migrate.connect(groups_ensure, sender=self, dispatch_uid="operator-groups")


def _worker_spawned(sender: object, proc_name: str, **kwargs: object) -> None:
    from django.conf import settings

    from orchestrator_app import dispatcher, tasks
    from orchestrator_app.services import pipeline_milestones

    if settings.CLAWDBOT_PIPELINE_MILESTONES:
        pipeline_milestones.start_in_background()
    if not settings.MILESTONE_DISPATCHER:
        return
    try:
        tasks.sweep_schedule_ensure()
    finally:
        dispatcher.start_in_background()
