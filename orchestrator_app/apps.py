from __future__ import annotations

from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator_app"
    verbose_name = "Orchestrator outbox"
