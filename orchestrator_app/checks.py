"""System checks of the outbox's settings (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_outbound_private(**_: Any) -> list[checks.CheckMessage]:
    """W002: targets may point at private and loopback addresses (the local demo's
    default, a server-side request forgery path in production)."""
    if not settings.CLAWDBOT_OUTBOUND_ALLOW_PRIVATE:
        return []
    return [checks.Warning(
        "CLAWDBOT_OUTBOUND_ALLOW_PRIVATE is on: the outbox will POST to private, loopback "
        "and link-local addresses, so whoever may configure a target can reach this "
        "network's internal services.",
        hint="Set CLAWDBOT_OUTBOUND_ALLOW_PRIVATE=0 in production (docs/OPERATIONS.md, "
        "Production settings); keep it on only where targets are on a private network.",
        id="clawdbot.W002",
    )]
