"""The project's routes plus the two baselines the feed benchmark compares against."""

from __future__ import annotations

from django.urls import include, path

from bench import baseline

urlpatterns = [
    path("bench/bare-insert", baseline.bare_insert),
    path("bench/feed-pgjson", baseline.feed_pgjson),
    path("", include("clawdbot.urls")),
]
