"""The lean ASGI path (feed_app.asgi.HotPaths) answers exactly as Django would.

Each request goes through the project's ASGI application twice where it matters: once on
the lean path and once with it switched off (``CLAWDBOT_HOT_PATHS=False``: Django, DRF and
the middleware), and the answers are compared byte for byte, headers included.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import connection

from clawdbot import asyncdb
from clawdbot.asgi import application, django_asgi_app
from clawdbot.eventstore import projections, store
from feed_app.asgi import HotPaths, hot_paths_enabled
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory
from tests.feed.factories import signed

pytestmark = pytest.mark.django_db(transaction=True)

INGEST = "/internal/milestones/ingest"


def _scope(method: str, path: str, query: bytes, headers: dict[str, str]) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "client": ("198.51.100.4", 5000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())],
    }


async def _call_async(method: str, path: str, *, body: bytes = b"", query: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    sent: list[dict] = []
    scope = _scope(method, path, query, {"content-type": "application/json",
                                         "content-length": str(len(body)), **(headers or {})})
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.Future()  # the client stays until the answer (Django listens)
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    response_headers = {bytes(k).lower(): bytes(v) for k, v in start["headers"]}
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], response_headers, content


def _call(method: str, path: str, **kwargs: Any) -> tuple[int, dict, bytes]:
    async def call_and_close() -> tuple[int, dict, bytes]:
        try:
            return await _call_async(method, path, **kwargs)
        finally:
            await asyncdb.close_pools()  # each call runs on an event loop of its own

    return async_to_sync(call_and_close)()


def _both(settings: Any, method: str, path: str, **kwargs: Any) -> tuple[tuple, tuple]:
    lean = _call(method, path, **kwargs)
    settings.CLAWDBOT_HOT_PATHS = False
    try:
        django = _call(method, path, **kwargs)
    finally:
        settings.CLAWDBOT_HOT_PATHS = True
    return lean, django


def _without_length(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k != b"content-length"}


def test_the_lean_path_is_on_with_the_project_settings():
    assert hot_paths_enabled()


def test_another_inline_projection_of_accepted_milestones_turns_it_off(monkeypatch):
    class Audit(projections.Projection):
        name = "audit"
        models = ()
        types = frozenset({"feed.milestone_accepted"})

        def apply(self, events: Any) -> None:
            pass

    monkeypatch.setitem(projections._registry, "audit", Audit())
    assert not hot_paths_enabled()


def test_a_middleware_it_does_not_reproduce_turns_the_lean_path_off(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    assert not hot_paths_enabled()


def test_accepted_and_duplicate_answer_as_django_does(settings):
    first, second = EnvelopeFactory(), EnvelopeFactory()
    (lean, django) = _both(settings, "POST", INGEST, body=signed(first)[0],
                           headers=signed(first)[1])
    assert lean[0] == 200 and json.loads(lean[2])["status"] == "accepted"
    assert json.loads(django[2])["status"] == "duplicate"  # Django saw the lean one's row
    assert _without_length(lean[1]) == _without_length(django[1])
    body, headers = signed(second)
    settings.CLAWDBOT_HOT_PATHS = False
    assert json.loads(_call("POST", INGEST, body=body, headers=headers)[2])["status"] == (
        "accepted")
    settings.CLAWDBOT_HOT_PATHS = True
    status, _, content = _call("POST", INGEST, body=body, headers=headers)
    assert (status, json.loads(content)) == (
        200, {"ok": True, "status": "duplicate", "milestoneId": second["event"]["milestoneId"]})
    assert FeedItem.objects.count() == 2
    assert store.count(types=["feed.milestone_accepted"]) == 2


def test_the_stored_row_is_what_a_rebuild_of_the_log_writes():
    for _ in range(3):
        body, headers = signed()
        assert _call("POST", INGEST, body=body, headers=headers)[0] == 200
    columns = [f.attname for f in FeedItem._meta.fields]
    live = list(FeedItem.objects.order_by("position").values_list(*columns))
    assert all(row[columns.index("item")]["receivedAtUtc"].endswith("Z") for row in live)
    projections.rebuild("feed")
    assert list(FeedItem.objects.order_by("position").values_list(*columns)) == live


def test_a_rejection_goes_to_django_and_is_recorded(settings):
    body, headers = signed()
    headers["x-openclaw-signature"] = "0" * 64
    status, _, content = _call("POST", INGEST, body=body, headers=headers)
    assert status == 401 and json.loads(content)["status"] == "rejected"
    assert DeadLetter.objects.get().remote_addr == "198.51.100.4"
    assert FeedItem.objects.count() == 0


@pytest.mark.parametrize("query", [
    b"limit=2", b"", b"limit=50&scope=runtime", b"riskStatus=blocked", b"before=nonsense",
    b"limit=2&limit=9", b"scope=a%00b",
])
def test_feed_latest_answers_byte_for_byte_as_django_does(settings, query):
    for _ in range(3):
        body, headers = signed()
        assert _call("POST", INGEST, body=body, headers=headers)[0] == 200
    lean, django = _both(settings, "GET", "/api/milestones/latest", query=query)
    assert lean == django
    assert lean[0] in (200, 400)


@pytest.mark.parametrize("origin", ["https://dashboard.example", None])
def test_feed_latest_answers_cross_origin_reads_as_django_does(settings, origin):
    headers = {"origin": origin} if origin else {}
    lean, django = _both(settings, "GET", "/api/milestones/latest", headers=headers)
    assert lean == django
    assert lean[1][b"vary"] == b"origin"
    assert lean[1].get(b"access-control-allow-origin") == (b"*" if origin else None)


def test_a_page_cursor_from_the_lean_path_pages_on(settings):
    for _ in range(3):
        body, headers = signed()
        _call("POST", INGEST, body=body, headers=headers)
    first = json.loads(_call("GET", "/api/milestones/latest", query=b"limit=2")[2])
    query = f"limit=2&before={first['nextCursor']}".encode()
    rest = json.loads(_call("GET", "/api/milestones/latest", query=query)[2])
    keys = [i["idempotencyKey"] for i in first["items"] + rest["items"]]
    assert len(set(keys)) == 3 and rest["nextCursor"] is None


def test_a_refused_host_is_left_to_django(settings):
    settings.ALLOWED_HOSTS = ["example.org"]
    body, headers = signed()
    status, _, _ = _call("POST", INGEST, body=body, headers=headers)
    assert status == 400
    assert FeedItem.objects.count() == 0


def test_an_unreachable_database_gives_503_and_stores_nothing(settings):
    saved = copy.deepcopy(connection.settings_dict)
    settings.ASYNC_DB_POOL_TIMEOUT_S = 0.5
    connection.settings_dict["PORT"] = "1"  # the pool is built from these settings
    try:
        body, headers = signed()
        status, headers, content = _call("POST", INGEST, body=body, headers=headers)
        feed = _call("GET", "/api/milestones/latest")
    finally:
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert status == 503 and headers[b"retry-after"]
    assert json.loads(content) == {"ok": False, "status": "rejected",
                                   "reason": "database unavailable"}
    assert feed[0] == 503
    assert store.count() == 0


def test_a_lean_ingest_reaches_a_websocket_client_after_commit():
    envelope = EnvelopeFactory()
    body, headers = signed(envelope)

    async def scenario() -> dict:
        socket = WebsocketCommunicator(application, "/ws/milestones/?after=0")
        connected, _ = await socket.connect()
        assert connected
        try:
            status, _, _ = await _call_async("POST", INGEST, body=body, headers=headers)
            assert status == 200
            return await socket.receive_json_from(timeout=5)
        finally:
            await socket.disconnect()
            await asyncdb.close_pools()

    message = async_to_sync(scenario)()
    assert message["type"] == "milestone"
    assert message["idempotencyKey"] == envelope["idempotencyKey"]
    assert message["event"] == envelope["event"]


#: What CLAWDBOT_HTTPS=1 sets (clawdbot/settings.py), HSTS shortened, behind the proxy
#: the test requests come from.
HTTPS = {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
         "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 3600,
         "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
         "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
         # X-Forwarded-Proto counts only from a trusted proxy (clawdbot/forwarded.py)
         "CLAWDBOT_TRUSTED_PROXIES": "198.51.100.4/32"}


@pytest.fixture(autouse=True)
def _middleware_reloaded() -> Iterator[None]:
    """Django's ASGI handler loads its middleware again once a test's settings are
    restored: SecurityMiddleware reads them once. (Autouse, so set up before ``settings``
    and torn down after it.)"""
    yield
    django_asgi_app.load_middleware(is_async=True)


@pytest.fixture
def behind_https(settings, monkeypatch) -> list[str]:
    """The HTTPS settings, and the paths the lean path answered itself.

    Set through pytest-django's ``settings`` (not a nested override_settings): the tests
    change settings through it too, and its teardown restores them in one order.
    """
    answered: list[str] = []
    ingest, latest = HotPaths._ingest, HotPaths._latest

    async def spy_ingest(self, scope, receive, send):
        answered.append(scope["path"])
        return await ingest(self, scope, receive, send)

    async def spy_latest(self, scope, receive, send):
        answered.append(scope["path"])
        return await latest(self, scope, receive, send)

    monkeypatch.setattr(HotPaths, "_ingest", spy_ingest)
    monkeypatch.setattr(HotPaths, "_latest", spy_latest)
    for name, value in HTTPS.items():
        setattr(settings, name, value)
    django_asgi_app.load_middleware(is_async=True)  # SecurityMiddleware reads once
    return answered


def test_behind_https_the_lean_path_answers_with_hsts_and_csp_as_django_does(
    settings, behind_https
):
    assert hot_paths_enabled()
    body, headers = signed()
    lean, django = _both(settings, "POST", INGEST, body=body,
                         headers={**headers, "x-forwarded-proto": "https"})
    assert behind_https == [INGEST]  # the first call was the lean path's
    assert json.loads(lean[2])["status"] == "accepted"
    assert json.loads(django[2])["status"] == "duplicate"
    assert _without_length(lean[1]) == _without_length(django[1])
    assert lean[1][b"strict-transport-security"] == b"max-age=3600; includeSubDomains; preload"
    assert b"default-src 'self'" in lean[1][b"content-security-policy"]
    assert lean[1][b"x-content-type-options"] == b"nosniff"
    lean, django = _both(settings, "GET", "/api/milestones/latest", query=b"limit=1",
                         headers={"x-forwarded-proto": "https"})
    assert lean == django and lean[0] == 200


@pytest.mark.parametrize("forwarded", [{}, {"x-forwarded-proto": "http"},
                                       {"x_forwarded_proto": "https"}])
def test_plain_http_behind_https_is_left_to_djangos_redirect(settings, behind_https,
                                                              forwarded):
    body, headers = signed()
    status, response_headers, _ = _call("POST", INGEST, body=body,
                                        headers={**headers, **forwarded})
    assert behind_https == []
    assert status == 301
    assert response_headers[b"location"] == f"https://127.0.0.1{INGEST}".encode()
    assert FeedItem.objects.count() == 0


def test_without_https_there_is_no_hsts_on_either_path(settings):
    body, headers = signed()
    lean, django = _both(settings, "POST", INGEST, body=body, headers=headers)
    assert b"strict-transport-security" not in lean[1]
    assert _without_length(lean[1]) == _without_length(django[1])
