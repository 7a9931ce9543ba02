"""The live WebSocket opens only from pages of this site (SPEC §6).

A browser sends ``Origin`` with every WebSocket handshake, and a page of another site
cannot forge it, so a cross-site page is refused (403 at the handshake) unless its origin
is in ``CLAWDBOT_WS_ORIGINS``. A page of this site has an origin whose host is one of
``ALLOWED_HOSTS`` (Django's patterns: ``.example.com`` for a domain and its subdomains,
``*`` for any). ``Origin: null`` (a sandboxed frame, a file) is refused. A client that
sends no Origin is not a browser page and has nothing a cross-site page could ride on; it
is let through (the TypeScript reference's client and orchestrators connect that way).
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings


class SiteOriginValidator(OriginValidator):
    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        self.allowed_origins = [*settings.ALLOWED_HOSTS, *settings.CLAWDBOT_WS_ORIGINS]
        return self.validate_origin(parsed_origin)
