"""WebSocket routes of the feed side."""

from __future__ import annotations

from django.urls import path

from feed_app.consumers import MilestoneConsumer
from feed_app.paths import LIVE_PATH

websocket_urlpatterns = [path(LIVE_PATH.lstrip("/"), MilestoneConsumer.as_asgi())]
