"""Reading an ingest request's body within the size limit, without reading past it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from feed_app.checks import IngestRequest

#: Set in the ASGI scope by ``feed_app.asgi.BodyLimit`` when it stopped reading.
OVER_LIMIT_SCOPE_KEY = "clawdbot.body_over_limit"
#: With it, how many body bytes had arrived when it stopped (chunked bodies declare none).
RECEIVED_SCOPE_KEY = "clawdbot.body_bytes_received"

_HEADERS = (
    "x-openclaw-signature",
    "x-openclaw-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def ingest_request(
    request: HttpRequest | Request, *, limit: int | None = None
) -> IngestRequest:
    """Build the service's input; a body over ``limit`` (default: the single ingest's) is
    not read at all (413). A DRF ``Request`` offers the ``HttpRequest`` it wraps's
    attributes (``META``, ``headers``, ``read``, the ASGI ``scope``) as its own."""
    limit = settings.MILESTONE_INGEST_MAX_BYTES if limit is None else limit
    headers = {name: request.headers.get(name, "") for name in _HEADERS}
    remote = request.META.get("REMOTE_ADDR") or ""
    declared = _declared_length(request)
    scope = getattr(request, "scope", {})
    if scope.get(OVER_LIMIT_SCOPE_KEY) or (declared is not None and declared > limit):
        size = declared if declared is not None else scope.get(RECEIVED_SCOPE_KEY)
        return IngestRequest(b"", headers, remote, over_limit=True, body_bytes=size)
    body = request.read(limit + 1)
    if len(body) > limit:
        return IngestRequest(body[:limit], headers, remote, over_limit=True, body_bytes=declared)
    return IngestRequest(body, headers, remote)
