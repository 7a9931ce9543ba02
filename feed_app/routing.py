"""WebSocket routes of the feed side."""

from __future__ import annotations

websocket_urlpatterns: list = []
