"""HTTP routes of the orchestrator side (emit, deliveries)."""

from __future__ import annotations

from django.urls import path

from orchestrator_app.api import views

urlpatterns = [
    path("api/orchestrator/milestones", views.milestone_emit_view, name="orchestrator-emit"),
    path("api/orchestrator/deliveries", views.delivery_list_view,
         name="orchestrator-deliveries"),
]
