"""ASGI entry point: the hot routes on the event loop, other HTTP through Django, WebSockets
through Channels (feed_app/asgi.py says which requests take the lean path). Forwarded
headers are settled first, for both (clawdbot/forwarded.py); a WebSocket from another
site's page is refused (clawdbot/origins.py)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clawdbot.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from clawdbot.forwarded import ForwardedHeaders  # noqa: E402
from clawdbot.origins import SiteOriginValidator  # noqa: E402
from clawdbot.routing import websocket_urlpatterns  # noqa: E402
from feed_app.asgi import BodyLimit, HotPaths  # noqa: E402

application = ForwardedHeaders(ProtocolTypeRouter(
    {
        "http": BodyLimit(HotPaths(django_asgi_app)),
        # The live feed is public and reads no session or user: no auth middleware, whose
        # session wrapper cost about 12 % of the CPU of every frame sent (bench.profile).
        "websocket": SiteOriginValidator(URLRouter(websocket_urlpatterns)),
    }
))
