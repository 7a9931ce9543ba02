"""Filters of the console's templates: exact times, status badges, readable JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

#: Status (delivery, attempt outcome or ingest result) → badge colour class.
TONES = {
    "delivered": "ok", "duplicate": "ok", "accepted": "ok",
    "pending": "wait", "retrying": "warn", "retry": "warn", "started": "wait",
    "rejected": "bad", "dead-letter": "bad", "interrupted": "warn", "discarded": "muted",
    "paused": "warn", "active": "ok", "inactive": "muted",
}


@register.filter
def ms(value: datetime | None) -> str:
    """A time in UTC to the millisecond (``2026-12-02 15:04:05.123``); "—" for none."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@register.filter
def badge(status: str) -> str:
    return format_html('<span class="cb-badge cb-{}">{}</span>',
                       TONES.get(str(status), "muted"), status)


@register.filter
def pretty_json(value: Any) -> str:
    """``value`` (a parsed value, or JSON text) indented; text that is not JSON as is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def success_rate(target: Any) -> str:
    """A target's share of successful attempts over 24 hours (see ``targets_with_health``)."""
    from orchestrator_app.health import success_rate as rate

    value = rate(target)
    return "—" if value is None else f"{value:.0%}"
