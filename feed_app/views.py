"""The live feed page at ``/``: server-rendered, then kept current over the WebSocket."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from feed_app import selectors
from feed_app.paths import LIVE_PATH

PAGE_SIZE = 50


def feed_page_view(request: HttpRequest) -> HttpResponse:
    page = selectors.feed_live_page(limit=PAGE_SIZE)
    context = {
        "items": page.items,
        "live": {"after": page.after, "path": LIVE_PATH, "max": PAGE_SIZE},
    }
    return render(request, "feed_app/feed.html", context)
