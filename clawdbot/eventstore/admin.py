"""The event log in the admin: browsable, searchable, never editable."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from clawdbot.admin import ReadOnlyAdmin, indexed_values_filter
from clawdbot.eventstore.models import Event, ProjectionCheckpoint, StreamIndex


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("position", "type", "stream_id", "version", "recorded_at")
    list_filter = (indexed_values_filter("type", "type"),  # index event_type_position
                   ("recorded_at", admin.DateFieldListFilter))
    search_fields = ("stream_id",)
    readonly_fields = ("position", "stream_id", "version", "type", "pretty_data",
                       "pretty_metadata", "recorded_at")
    exclude = ("data", "metadata")

    @admin.display(description="data")
    def pretty_data(self, obj: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, ensure_ascii=False))

    @admin.display(description="metadata")
    def pretty_metadata(self, obj: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.metadata, indent=2, ensure_ascii=False))


@admin.register(ProjectionCheckpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("name", "position", "updated_at")


@admin.register(StreamIndex)
class StreamIndexAdmin(ReadOnlyAdmin):
    list_display = ("stream_id", "version", "last_type", "last_position", "last_recorded_at")
    search_fields = ("stream_id",)
