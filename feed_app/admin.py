"""The feed side in the admin: feed items and ingest dead letters, read-only projections."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from clawdbot.admin import ReadOnlyAdmin
from feed_app.models import DeadLetter, FeedItem


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("position", "recorded_at", "http_status", "reason_code", "idempotency_key",
                    "scheme", "remote_addr")
    list_filter = ("reason_code", "http_status", "scheme",
                   ("recorded_at", admin.DateFieldListFilter))
    date_hierarchy = "recorded_at"
    search_fields = ("idempotency_key", "reason", "body_sha256", "remote_addr")
    readonly_fields = ("position", "recorded_at", "http_status", "reason_code", "reason",
                       "pretty_errors", "idempotency_key", "scheme", "remote_addr",
                       "body_sha256", "body_bytes", "body_excerpt")
    exclude = ("errors",)

    @admin.display(description="errors")
    def pretty_errors(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.errors, indent=2, ensure_ascii=False))


@admin.register(FeedItem)
class FeedItemAdmin(ReadOnlyAdmin):
    list_display = ("position", "milestone_id", "timestamp", "scope", "risk_status", "source",
                    "idempotency_key")
    list_filter = ("risk_status", "source", ("timestamp", admin.DateFieldListFilter))
    search_fields = ("idempotency_key", "milestone_id", "scope")
    readonly_fields = ("position", "idempotency_key", "milestone_id", "timestamp", "scope",
                       "risk_status", "source", "pretty_event", "received_at")
    exclude = ("event",)
    show_full_result_count = False

    @admin.display(description="event")
    def pretty_event(self, obj: FeedItem) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.event, indent=2, ensure_ascii=False))
