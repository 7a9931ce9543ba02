"""The live feed page at ``/``: server-rendered, then kept current over the WebSocket."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from feed_app import selectors
from feed_app.models import FeedItem

PAGE_SIZE = 50


def feed_page_view(request: HttpRequest) -> HttpResponse:
    items = list(FeedItem.objects.order_by("-timestamp", "-position")[:PAGE_SIZE])
    context = {
        "items": items,
        "live": {"after": selectors.feed_last_position(), "path": "/ws/milestones/",
                 "max": PAGE_SIZE},
    }
    return render(request, "feed_app/feed.html", context)
