"""ASGI layers in front of Django for the ingest and the feed's hot routes.

``HotPaths`` serves the two routes that carry the load, ``POST /internal/milestones/ingest``
and ``GET /api/milestones/latest``, on the event loop: no thread per request, no middleware
hops, one statement on an asyncio pool (``clawdbot.asyncdb``). Measured, Django's sync
middleware stack under ASGI took about half of an ingest's CPU time (docs/PERFORMANCE.md).
It answers only what it can answer exactly as Django would (the same bodies and headers,
tests/feed/test_hot_paths.py compares them): an accepted or duplicate ingest, a feed
page, a bad feed query, a database outage. Everything else goes to Django untouched, with
the body it read replayed: every rejection (so recording it stays in one place,
``services.envelope_ingest``), a host Django would refuse, other methods, and all requests
whenever ``settings.MIDDLEWARE`` holds a middleware whose effect this layer does not
reproduce.

``BodyLimit`` stops receiving any request body once it passes its path's limit. Django's
ASGI handler reads a whole body before the view runs; this wrapper ends the body early (by
declared length, or by counting chunked bytes), so a multi-megabyte upload costs no more
than the limit: the ingest paths' views answer 413 and record it, every other path gets
its 413 from the wrapper.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from csp.utils import build_policy as build_csp
from django.conf import settings
from django.http import QueryDict
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from clawdbot import asyncdb
from clawdbot.errors import DomainError, ServiceUnavailable
from clawdbot.eventstore import projections
from feed_app import selectors, services
from feed_app.api import params
from feed_app.api.body import OVER_LIMIT_SCOPE_KEY, RECEIVED_SCOPE_KEY
from feed_app.checks import IngestRequest, Passed, ingest_check
from feed_app.paths import BATCH_INGEST_PATH, INGEST_PATH, LATEST_PATH
from feed_app.projections import MILESTONE_ACCEPTED

_LIMITS = {INGEST_PATH: "MILESTONE_INGEST_MAX_BYTES",
           BATCH_INGEST_PATH: "MILESTONE_INGEST_BATCH_MAX_BYTES"}

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

#: The middleware whose effect on these two routes ``HotPaths`` reproduces: response
#: headers (security incl. HSTS, Content-Security-Policy, X-Frame-Options), host validation,
#: the HTTPS redirect (by leaving plain-HTTP requests to Django) and nothing else that
#: applies (sessions, auth and messages are never read by these views; both are
#: CSRF-exempt).
SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"
CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"
CSP_MIDDLEWARE = "csp.middleware.CSPMiddleware"
REPRODUCED_MIDDLEWARE = frozenset({
    SECURITY_MIDDLEWARE,
    CORS_MIDDLEWARE,
    CSP_MIDDLEWARE,
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
})

_INGEST_HEADERS = frozenset(
    name.encode() for name in ("x-openclaw-signature", "x-openclaw-timestamp", "webhook-id",
                               "webhook-timestamp", "webhook-signature")
)


def accept_one_is_record() -> bool:
    """Whether ``ACCEPT_ONE`` is all ``projections.record`` would do for an accepted
    milestone: the feed is the only inline projection of that event type."""
    readers = [p.name for p in projections.registered()
               if p.inline and (p.types is None or MILESTONE_ACCEPTED in p.types)]
    return readers == ["feed"]


def hot_paths_enabled() -> bool:
    """Whether ``HotPaths`` may answer: only when Django would add nothing it does not."""
    s = settings
    return (
        getattr(s, "CLAWDBOT_HOT_PATHS", True)
        and accept_one_is_record()
        and set(s.MIDDLEWARE) <= REPRODUCED_MIDDLEWARE
        and not (s.PREPEND_WWW or s.DISALLOWED_USER_AGENTS or s.USE_X_FORWARDED_HOST)
    )


def _is_secure(scope: dict) -> bool | None:
    """``HttpRequest.is_secure()`` for this scope; None when only Django can tell (the
    proxy's header given more than once or spelt with underscores: Django joins those)."""
    header = settings.SECURE_PROXY_SSL_HEADER
    if header:
        meta_name, secure_value = header
        values = [(k, v) for k, v in scope.get("headers") or []
                  if "HTTP_" + k.decode("latin-1").upper().replace("-", "_") == meta_name]
        if len(values) > 1 or any(b"_" in k for k, _v in values):
            return None
        if values:
            return values[0][1].decode("latin-1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


_csp_headers: dict[tuple[int, bool], tuple[object, str]] = {}


def _csp_header(config: object, report_only: bool) -> str:
    """django-csp's header for this policy setting, without a nonce (these responses render
    nothing). Building it takes a few hundred microseconds, so it is kept per setting
    object (a test's override_settings brings a new one)."""
    key = (id(config), report_only)
    cached = _csp_headers.get(key)
    if cached is None or cached[0] is not config:
        cached = _csp_headers[key] = (config, build_csp(report_only=report_only))
    return cached[1]


def _response_headers(scope: dict, status: int, allow: bytes,
                      extra: dict[str, str] | None = None) -> list[list[bytes]]:
    """The headers Django's view, DRF and the middleware put on these JSON responses."""
    s = settings
    headers = [[b"content-type", b"application/json"], [b"allow", allow]]
    headers += [[k.lower().encode(), v.encode("latin-1")] for k, v in (extra or {}).items()]
    if "django.middleware.clickjacking.XFrameOptionsMiddleware" in s.MIDDLEWARE:
        headers.append([b"x-frame-options", s.X_FRAME_OPTIONS.upper().encode()])
    if CSP_MIDDLEWARE in s.MIDDLEWARE and not (s.DEBUG and status in (404, 500)):
        for name, setting, report_only in (
            (b"content-security-policy", "CONTENT_SECURITY_POLICY", False),
            (b"content-security-policy-report-only", "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
        ):
            config = getattr(s, setting, None)
            policy = _csp_header(config, report_only)
            excluded = (config or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if policy and not scope["path"].startswith(tuple(excluded)):
                headers.append([name, policy.encode()])
    if SECURITY_MIDDLEWARE in s.MIDDLEWARE:
        if s.SECURE_HSTS_SECONDS and _is_secure(scope):
            hsts = f"max-age={s.SECURE_HSTS_SECONDS}"
            if s.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                hsts += "; includeSubDomains"
            if s.SECURE_HSTS_PRELOAD:
                hsts += "; preload"
            headers.append([b"strict-transport-security", hsts.encode()])
        if s.SECURE_CONTENT_TYPE_NOSNIFF:
            headers.append([b"x-content-type-options", b"nosniff"])
        if s.SECURE_REFERRER_POLICY:
            policy = s.SECURE_REFERRER_POLICY
            value = policy if isinstance(policy, str) else ",".join(policy)
            headers.append([b"referrer-policy", value.encode()])
        if s.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            headers.append([b"cross-origin-opener-policy",
                            s.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()])
    if CORS_MIDDLEWARE in s.MIDDLEWARE and re.match(s.CORS_URLS_REGEX, scope["path"]):
        headers.append([b"vary", b"origin"])
        if any(k == b"origin" and v for k, v in scope.get("headers") or []):
            headers.append([b"access-control-allow-origin", b"*"])
    return headers


async def _respond(send: Send, status: int, body: bytes, headers: list[list[bytes]]) -> None:
    headers.append([b"content-length", str(len(body)).encode()])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _drf_json(data: dict[str, Any]) -> bytes:
    """What DRF's JSONRenderer writes with the project's settings (compact, UTF-8)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _host_allowed(scope: dict) -> bool:
    hosts = [v for k, v in scope.get("headers") or [] if k == b"host"]
    if len(hosts) != 1:
        return False  # Django joins repeated headers; leave such requests to it
    domain, _port = split_domain_port(hosts[0].decode("latin-1"))
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


class HotPaths:
    """Serve the ingest and the feed page on the event loop; everything else via ``app``.

    Runs behind ``BodyLimit``, which marks an ingest body past its limit in the scope.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and hot_paths_enabled() and _host_allowed(scope)
                and _is_secure(scope) is not None
                # plain HTTP under SECURE_SSL_REDIRECT: Django redirects (or exempts) it
                and not (settings.SECURE_SSL_REDIRECT and not _is_secure(scope))):
            path, method = scope.get("path"), scope.get("method")
            if path == INGEST_PATH and method == "POST":
                return await self._ingest(scope, receive, send)
            if path == LATEST_PATH and method == "GET":
                return await self._latest(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _ingest(self, scope: dict, receive: Receive, send: Send) -> None:
        limit = settings.MILESTONE_INGEST_MAX_BYTES
        if scope.get(OVER_LIMIT_SCOPE_KEY):  # declared too long (BodyLimit, in front)
            return await self.app(scope, receive, send)  # 413 unread, recorded by Django
        chunks: list[bytes] = []
        received, more = 0, True
        while more and received <= limit:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            more = message.get("more_body", False)
        if more or received > limit or scope.get(OVER_LIMIT_SCOPE_KEY):
            return await self.app(scope, _replay(chunks, more, receive), send)
        request = _ingest_request(scope, b"".join(chunks))
        verdict = ingest_check(request, now=timezone.now())
        if not isinstance(verdict, Passed):  # recorded and answered by Django
            return await self.app(scope, _replay(chunks, False, receive), send)
        accept = services.milestone_accept(request=request, verdict=verdict)
        try:
            result = await services.milestone_store_async(accept)
        except ServiceUnavailable as exc:
            return await _respond_error(scope, send, exc, allow=b"POST, OPTIONS")
        await _respond(send, 200, _drf_json(result.body()),
                       _response_headers(scope, 200, b"POST, OPTIONS"))

    async def _latest(self, scope: dict, receive: Receive, send: Send) -> None:
        try:
            query = QueryDict(scope.get("query_string", b"").decode())
        except UnicodeDecodeError:
            return await self.app(scope, receive, send)
        allow = b"GET, HEAD, OPTIONS"
        try:
            args = params.feed_page_args(query)
            sql, sql_params = selectors.feed_page_query(**args)
            page = await _feed_page(sql, sql_params, limit=args["limit"])
        except DomainError as exc:
            return await _respond_error(scope, send, exc, allow=allow)
        await _respond(send, 200, params.feed_page_json(page).encode(),
                       _response_headers(scope, 200, allow))


async def _respond_error(scope: dict, send: Send, exc: DomainError, *, allow: bytes) -> None:
    headers = _response_headers(scope, exc.status_code, allow, exc.headers)
    await _respond(send, exc.status_code, _drf_json(exc.body()), headers)


async def _feed_page(sql: str, sql_params: dict, *, limit: int) -> selectors.FeedPage:
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        async with (await asyncdb.pool()).connection() as conn:
            cursor = await conn.execute(sql, sql_params, prepare=True)
            row = await cursor.fetchone()
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
        raise ServiceUnavailable() from exc
    assert row is not None  # an aggregate always returns one row
    return selectors.feed_page_from_row(row, limit=limit)


def _ingest_request(scope: dict, body: bytes) -> IngestRequest:
    """``feed_app.api.body.ingest_request`` for a body read within the limit."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers") or []:
        if name in _INGEST_HEADERS:
            key = name.decode()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
    client = scope.get("client")
    return IngestRequest(body, headers, client[0] if client else "")


def _replay(chunks: list[bytes], more: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the body chunks already read again, then the rest."""
    pending = list(chunks)

    async def replay() -> dict:
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending) or more}
        return await receive()

    return replay


def _declared_length(scope: dict) -> int | None:
    declared = dict(scope.get("headers") or []).get(b"content-length", b"")
    return int(declared) if declared.isdigit() else None


def _too_large_body(limit: int) -> bytes:
    return _drf_json({"ok": False, "status": "rejected",
                      "reason": f"request body is larger than {limit} bytes"})


async def _respond_too_large(send: Send, limit: int) -> None:
    # No "Connection: close": closing with the body still arriving resets the connection,
    # and the client may lose the answer. The server discards what follows instead.
    await _respond(send, 413, _too_large_body(limit), [[b"content-type", b"application/json"]])


class BodyLimit:
    """Stop receiving any HTTP request body once it passes its path's limit.

    Django's ASGI handler reads a whole body (into memory, then a temporary file) before
    any middleware or view runs, so without this every path would buffer a body of any
    size before it answered. The ingest paths have their own limits
    (``MILESTONE_INGEST_MAX_BYTES``, ``MILESTONE_INGEST_BATCH_MAX_BYTES``): their body is
    ended early and the view answers 413 and records the rejection. Every other path has
    ``CLAWDBOT_REQUEST_MAX_BYTES``: a declared length past it is answered 413 here without
    reading the body; a chunked body is counted, and once past it Django is told the
    client went away (it then answers nothing) and the 413 is sent from here.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        setting = _LIMITS.get(scope.get("path", ""))
        if setting is None:
            return await self._any_path(scope, receive, send)
        return await self._ingest_path(scope, receive, send, getattr(settings, setting))

    async def _any_path(self, scope: dict, receive: Receive, send: Send) -> None:
        limit = settings.CLAWDBOT_REQUEST_MAX_BYTES
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await _respond_too_large(send, limit)
        received, cut, started = 0, False, False

        async def limited_receive() -> dict:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if cut and not started:
            await _respond_too_large(send, limit)

    async def _ingest_path(self, scope: dict, receive: Receive, send: Send,
                           limit: int) -> None:
        scope = dict(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
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
