"""HTTP routes of the orchestrator side (emit, deliveries)."""

from __future__ import annotations

from django.urls import path

from orchestrator_app.api import views

urlpatterns = [
    path("api/orchestrator/milestones", views.MilestoneEmitView.as_view(),
         name="orchestrator-emit"),
    path("api/orchestrator/deliveries", views.DeliveryListView.as_view(),
         name="orchestrator-deliveries"),
    path("api/orchestrator/targets", views.TargetListView.as_view(), name="orchestrator-targets"),
    path("api/orchestrator/targets/<slug:name>", views.TargetDetailView.as_view(),
         name="orchestrator-target"),
    path("api/orchestrator/targets/<slug:name>/pause", views.TargetPauseView.as_view(),
         name="orchestrator-target-pause"),
    path("api/orchestrator/targets/<slug:name>/resume",
         views.TargetPauseView.as_view(resume=True), name="orchestrator-target-resume"),
    path("api/orchestrator/targets/<slug:name>/rotate-secret",
         views.TargetRotateSecretView.as_view(), name="orchestrator-target-rotate-secret"),
]
