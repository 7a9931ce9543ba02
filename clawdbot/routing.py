"""WebSocket routes of every app, gathered in one list for ``asgi.py``."""

from __future__ import annotations

from feed_app.routing import websocket_urlpatterns as feed_websockets

websocket_urlpatterns = [*feed_websockets]
