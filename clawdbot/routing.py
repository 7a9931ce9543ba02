"""WebSocket routes of every app, gathered in one list for ``asgi.py``."""

from __future__ import annotations

websocket_urlpatterns: list = []
