"""ASGI middleware: stop receiving an ingest body once it passes the size limit.

Django's ASGI handler reads a whole body before the view runs; this wrapper ends the body
early for the ingest paths (by declared length, or by counting chunked bytes), so a
multi-megabyte upload costs no more than the limit. The view then answers 413.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from feed_app.api.body import OVER_LIMIT_SCOPE_KEY, RECEIVED_SCOPE_KEY

INGEST_PATH = "/internal/milestones/ingest"
BATCH_INGEST_PATH = "/internal/milestones/ingest/batch"
_LIMITS = {INGEST_PATH: "MILESTONE_INGEST_MAX_BYTES",
           BATCH_INGEST_PATH: "MILESTONE_INGEST_BATCH_MAX_BYTES"}


class IngestBodyLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        setting = _LIMITS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if setting is None:
            return await self.app(scope, receive, send)
        limit = getattr(settings, setting)
        scope = dict(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            scope[OVER_LIMIT_SCOPE_KEY] = True
        received = 0
        ended = False

        async def limited_receive() -> dict:
            nonlocal received, ended
            if ended:
                # Django listens for a disconnect while the view runs and cancels that
                # wait when the response is sent; never pull the rest of the body.
                await asyncio.Future()
            if scope.get(OVER_LIMIT_SCOPE_KEY):
                ended = True
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    scope[OVER_LIMIT_SCOPE_KEY] = ended = True
                    scope[RECEIVED_SCOPE_KEY] = received
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        return await self.app(scope, limited_receive, send)
