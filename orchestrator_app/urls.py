"""HTTP routes of the orchestrator side (emit, deliveries)."""

from __future__ import annotations

from django.urls import path

from orchestrator_app.api import views

urlpatterns = [
    path("api/orchestrator/milestones", views.MilestoneEmitView.as_view(),
         name="orchestrator-emit"),
    path("api/orchestrator/deliveries", views.DeliveryListView.as_view(),
         name="orchestrator-deliveries"),
]
