"""Emitted milestones in the admin: the event and the exact envelope sent, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from clawdbot.admin import ReadOnlyAdmin
from clawdbot.console.templatetags.console import pretty_json
from orchestrator_app.models import EmittedMilestone


@admin.register(EmittedMilestone)
class EmittedMilestoneAdmin(ReadOnlyAdmin):
    list_display = ("milestone_id", "sent_at_utc", "actor", "idempotency_key")
    search_fields = ("=milestone_id", "=idempotency_key")
    readonly_fields = ("idempotency_key", "milestone_id", "sent_at_utc", "actor", "pretty_event",
                       "sent_envelope", "context", "position")
    exclude = ("event", "envelope", "sent_at")

    @admin.display(description="event")
    def pretty_event(self, obj: EmittedMilestone) -> str:
        return format_html('<pre class="cb-pre">{}</pre>', pretty_json(obj.event))

    @admin.display(description="envelope sent (exact bytes)")
    def sent_envelope(self, obj: EmittedMilestone) -> str:
        return format_html('<pre class="cb-pre">{}</pre>', obj.envelope)
