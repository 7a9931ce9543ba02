"""HTTP routes of the feed side (ingest, feed API, dead-letter, live page)."""

from __future__ import annotations

urlpatterns: list = []
