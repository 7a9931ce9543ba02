"""WebSocket routes of the feed side."""

from __future__ import annotations

from django.urls import path

from feed_app.consumers import MilestoneConsumer

websocket_urlpatterns = [path("ws/milestones/", MilestoneConsumer.as_asgi())]
