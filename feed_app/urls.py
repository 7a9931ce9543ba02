"""HTTP routes of the feed side (ingest, feed API, dead-letter, live page)."""

from __future__ import annotations

from django.urls import path

from feed_app import views
from feed_app.api import views as api

urlpatterns = [
    path("internal/milestones/ingest", api.IngestView.as_view(), name="milestone-ingest"),
    path("internal/milestones/ingest/batch", api.BatchIngestView.as_view(),
         name="milestone-ingest-batch"),
    path("api/milestones/latest", api.FeedLatestView.as_view(), name="milestone-latest"),
    path("api/milestones/dead-letter", api.DeadLetterView.as_view(), name="milestone-dead-letter"),
    path("api/milestones/<path:idempotency_key>", api.MilestoneDetailView.as_view(),
         name="milestone-detail"),
    path("", views.feed_page_view, name="feed-page"),
]
