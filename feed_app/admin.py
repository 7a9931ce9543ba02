"""The feed side in the admin: feed items and ingest dead letters, read-only.

Both tables grow with traffic, so no changelist reads a whole one: counts are capped
(``clawdbot.admin.ReadOnlyAdmin``) and the filters offer fixed choices instead of
Django's default ``SELECT DISTINCT`` over the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from clawdbot import contract
from clawdbot.admin import ReadOnlyAdmin
from clawdbot.console.templatetags.console import ms, pretty_json
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
    list_display = ("id", "recorded", "http_status", "reason_badge", "count",
                    "idempotency_key", "scheme", "remote_addr")

    @admin.display(description="recorded (UTC)", ordering="id")
    def recorded(self, obj: DeadLetter) -> str:
        return ms(obj.recorded_at)

    @admin.display(description="reason", ordering="reason_code")
    def reason_badge(self, obj: DeadLetter) -> str:
        return format_html('<span class="cb-badge cb-bad">{}</span>', obj.reason_code)

    list_filter = (choice_filter("reason_code", "reason", REASON_CODES),
                   choice_filter("http_status", "HTTP status", (400, 401, 413)),
                   choice_filter("aggregate", "aggregate", ("True", "False")),
                   ("recorded_at", admin.DateFieldListFilter))
    search_fields = ("=idempotency_key", "=body_sha256", "=remote_addr")
    readonly_fields = ("id", "recorded_at_ms", "last_at_ms", "count", "aggregate",
                       "window_start", "http_status", "reason_code", "reason", "field_errors",
                       "key_and_delivery", "scheme", "remote_addr", "body_sha256", "body_bytes",
                       "pretty_body")
    exclude = ("errors", "body_excerpt", "idempotency_key", "recorded_at", "last_at")

    @admin.display(description="recorded (UTC)")
    def recorded_at_ms(self, obj: DeadLetter) -> str:
        return ms(obj.recorded_at)

    @admin.display(description="last (UTC)")
    def last_at_ms(self, obj: DeadLetter) -> str:
        return ms(obj.last_at)

    @admin.display(description="field errors")
    def field_errors(self, obj: DeadLetter) -> str:
        if not obj.errors:
            return "— (the request was refused before its fields were read)"
        return format_html('<ul class="cb-field-errors">{}</ul>', format_html_join(
            "", "<li><code>{}</code>: {}</li>",
            ((path, "; ".join(map(str, messages if isinstance(messages, list) else [messages])))
             for path, messages in obj.errors.items())))

    @admin.display(description="idempotency key")
    def key_and_delivery(self, obj: DeadLetter) -> str:
        if not obj.idempotency_key:
            return "— (not readable from the request)"
        url = reverse("admin:orchestrator_app_delivery_changelist")
        return format_html('<code>{}</code> · <a href="{}?idempotency_key={}">the outbox '
                           "delivery with this key</a>", obj.idempotency_key, url,
                           quote(obj.idempotency_key, safe=""))

    @admin.display(description="body (first bytes, pretty-printed when it is JSON)")
    def pretty_body(self, obj: DeadLetter) -> str:
        return format_html('<pre class="cb-pre">{}</pre>', pretty_json(obj.body_excerpt))


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
        return format_html('<pre class="cb-pre">{}</pre>', pretty_json(obj.event))
