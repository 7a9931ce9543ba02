"""The baseline server's routes: the two views the feed benchmark compares against."""

from __future__ import annotations

from django.urls import path

from bench import baseline

urlpatterns = [
    path("bench/bare-insert", baseline.bare_insert),
    path("bench/feed-pgjson", baseline.feed_pgjson),
]
