"""The feed side in the admin: feed items and ingest dead letters, read-only.

Both tables grow with traffic, so no changelist reads a whole one: counts are capped
(``clawdbot.admin.ReadOnlyAdmin``) and the filters offer fixed choices instead of
Django's default ``SELECT DISTINCT`` over the column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from clawdbot import contract
from clawdbot.admin import ReadOnlyAdmin
from feed_app.exceptions import REASON_CODES
from feed_app.models import DeadLetter, FeedItem


def choice_filter(field: str, title: str, values: Sequence[object]) -> type[admin.SimpleListFilter]:
    """A list filter on ``field`` offering ``values``, with no query to find them."""

    class ChoiceFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: object) -> list[tuple[str, str]]:
            return [(str(v), str(v)) for v in values]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    ChoiceFilter.title = title
    ChoiceFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return ChoiceFilter


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("id", "recorded_at", "http_status", "reason_code", "count", "idempotency_key",
                    "scheme", "remote_addr")
    list_filter = (choice_filter("reason_code", "reason", REASON_CODES),
                   choice_filter("http_status", "HTTP status", (400, 401, 413)),
                   choice_filter("aggregate", "aggregate", ("True", "False")),
                   ("recorded_at", admin.DateFieldListFilter))
    search_fields = ("=idempotency_key", "=body_sha256", "=remote_addr")
    readonly_fields = ("id", "recorded_at", "last_at", "count", "aggregate", "window_start",
                       "http_status", "reason_code", "reason", "pretty_errors",
                       "idempotency_key", "scheme", "remote_addr", "body_sha256", "body_bytes",
                       "body_excerpt")
    exclude = ("errors",)

    @admin.display(description="errors")
    def pretty_errors(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.errors, indent=2, ensure_ascii=False))


@admin.register(FeedItem)
class FeedItemAdmin(ReadOnlyAdmin):
    list_display = ("position", "milestone_id", "timestamp", "scope", "risk_status", "source",
                    "idempotency_key")
    list_filter = (choice_filter("risk_status", "risk status", contract.RISK_STATUSES),
                   choice_filter("source", "source", contract.SOURCES),
                   ("timestamp", admin.DateFieldListFilter))
    search_fields = ("=idempotency_key", "milestone_id", "scope")
    readonly_fields = ("position", "idempotency_key", "milestone_id", "timestamp", "scope",
                       "risk_status", "source", "pretty_event", "received_at")
    exclude = ("event",)

    @admin.display(description="event")
    def pretty_event(self, obj: FeedItem) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.event, indent=2, ensure_ascii=False))
