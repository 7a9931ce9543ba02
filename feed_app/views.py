"""The live feed page at ``/``: server-rendered, then kept current over the WebSocket."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clawdbot.contract import FIELD_MAX_LENGTHS, RISK_STATUSES, SOURCES
from feed_app import selectors
from feed_app.api.params import feed_cursor_text
from feed_app.paths import LATEST_PATH, LIVE_PATH

PAGE_SIZE = 50


def _filters(query: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The page's filters from its query string, and a note for each one ignored."""
    filters, ignored = {}, []
    scope = query.get("scope", "").strip()
    if scope:
        if len(scope) <= FIELD_MAX_LENGTHS.get("scope", 200):
            filters["scope"] = scope
        else:
            ignored.append("scope is longer than any stored scope")
    for name, allowed in (("riskStatus", RISK_STATUSES), ("source", SOURCES)):
        value = query.get(name, "")
        if value in allowed:
            filters[name] = value
        elif value:
            ignored.append(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return filters, ignored


def feed_page_view(request: HttpRequest) -> HttpResponse:
    filters, ignored = _filters(request.GET.dict())
    page = selectors.feed_live_page(limit=PAGE_SIZE, scope=filters.get("scope"),
                                    risk_status=filters.get("riskStatus"),
                                    source=filters.get("source"))
    context = {
        "items": page.items,
        "filters": filters,
        "ignored": ignored,
        "risks": RISK_STATUSES,
        "sources": SOURCES,
        "counts": selectors.feed_risk_counts().items(),
        "live": {
            "after": page.after, "path": LIVE_PATH, "max": PAGE_SIZE, "latest": LATEST_PATH,
            "filters": filters,
            "nextCursor": feed_cursor_text(*page.next_before) if page.next_before else None,
        },
    }
    return render(request, "feed_app/feed.html", context)
