"""HTTP routes of the feed side (ingest, feed API, dead-letter, live page)."""

from __future__ import annotations

from django.urls import path

from feed_app import views
from feed_app.api import views as api
from feed_app.paths import BATCH_INGEST_PATH, INGEST_PATH, LATEST_PATH

urlpatterns = [
    path(INGEST_PATH.lstrip("/"), api.IngestView.as_view(), name="milestone-ingest"),
    path(BATCH_INGEST_PATH.lstrip("/"), api.BatchIngestView.as_view(),
         name="milestone-ingest-batch"),
    path(LATEST_PATH.lstrip("/"), api.FeedLatestView.as_view(), name="milestone-latest"),
    path("api/milestones/dead-letter", api.DeadLetterView.as_view(), name="milestone-dead-letter"),
    path("api/milestones/<path:idempotency_key>", api.MilestoneDetailView.as_view(),
         name="milestone-detail"),
    path("", views.feed_page_view, name="feed-page"),
]
