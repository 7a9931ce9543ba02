"""HTTP routes of the orchestrator side (emit, deliveries)."""

from __future__ import annotations

urlpatterns: list = []
