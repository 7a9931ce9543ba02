"""Every HTTP path stops reading a request body past its limit (ASGI layer) and answers 413.

Django's ASGI handler reads a whole body into memory or a temporary file before any view
or middleware runs, so without this limit any path (the admin's login, the emit API, a URL
that does not exist) buffers a body of any size before it answers.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from clawdbot.asgi import application
from tests.liveserver import asgi_server

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = b"x" * 65536
PATHS = ["/admin/login/", "/api/orchestrator/milestones", "/api/milestones/latest",
         "/no/such/path", "/"]


def _call(path: str, headers: list[tuple[bytes, bytes]], chunks: int, *,
          method: str = "POST") -> tuple[int, dict[bytes, bytes], bytes, int]:
    """Send ``chunks`` chunks to ``path``; return status, headers, body and chunks pulled."""
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        if pulled == chunks:  # the body is over: the client waits for the answer
            await asyncio.Future()
        pulled += 1
        return {"type": "http.request", "body": CHUNK, "more_body": pulled < chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("198.51.100.4", 5000), "server": ("127.0.0.1", 8000),
    }
    async_to_sync(application)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


def _assert_413(status: int, headers: dict[bytes, bytes], body: bytes, limit: int) -> None:
    assert status == 413
    assert headers[b"content-type"] == b"application/json"
    answer = json.loads(body)
    assert answer["ok"] is False and answer["status"] == "rejected"
    assert str(limit) in answer["reason"]


@pytest.mark.parametrize("path", PATHS)
def test_a_declared_length_over_the_limit_is_413_before_reading_any_body(path, settings):
    limit = settings.CLAWDBOT_REQUEST_MAX_BYTES
    status, headers, body, pulled = _call(
        path, [(b"content-length", str(limit + 1).encode())], 100)
    _assert_413(status, headers, body, limit)
    assert pulled == 0


@pytest.mark.parametrize("path", PATHS)
@override_settings(CLAWDBOT_REQUEST_MAX_BYTES=4 * 65536)
def test_a_chunked_body_stops_being_read_just_past_the_limit(path):
    status, headers, body, pulled = _call(path, [(b"transfer-encoding", b"chunked")], 1000)
    _assert_413(status, headers, body, 4 * 65536)
    assert pulled == 5


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
@override_settings(CLAWDBOT_REQUEST_MAX_BYTES=65536)
def test_every_method_is_limited(method):
    status, headers, body, pulled = _call("/api/health", [], 1000, method=method)
    _assert_413(status, headers, body, 65536)
    assert pulled == 2


@override_settings(CLAWDBOT_REQUEST_MAX_BYTES=65536)
def test_the_feed_page_served_on_the_event_loop_is_limited_too():
    status, headers, body, pulled = _call(
        "/api/milestones/latest", [(b"content-length", b"65537")], 2, method="GET")
    _assert_413(status, headers, body, 65536)
    assert pulled == 0


@override_settings(CLAWDBOT_REQUEST_MAX_BYTES=65536)
def test_the_ingest_paths_keep_their_own_limits(settings):
    # The batch ingest takes up to 8 MiB whatever the general limit; past it, its own 413.
    status, _, body, pulled = _call("/internal/milestones/ingest/batch",
                                    [(b"transfer-encoding", b"chunked")], 1000)
    assert status == 413 and json.loads(body)["status"] == "rejected"
    assert pulled == settings.MILESTONE_INGEST_BATCH_MAX_BYTES // len(CHUNK) + 1


@override_settings(CLAWDBOT_REQUEST_MAX_BYTES=4 * 65536)
def test_a_body_within_the_limit_reaches_the_view():
    status, _, _, pulled = _call("/api/orchestrator/milestones",
                                 [(b"content-length", str(3 * 65536).encode())], 3)
    assert status in (401, 403)  # the view answered: no operator token
    assert pulled == 3


@pytest.mark.slow
def test_a_real_server_answers_413_while_a_chunked_upload_is_still_coming():
    limit = 64 * 1024
    with asgi_server({"CLAWDBOT_REQUEST_MAX_BYTES": str(limit)}) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
            sent, answer = 0, b""
            sock.settimeout(0.05)
            while sent < 32 * 1024 * 1024 and b"\r\n\r\n" not in answer:
                try:
                    sock.sendall(b"10000\r\n" + CHUNK + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(CHUNK)
                try:
                    answer += sock.recv(65536)
                except TimeoutError:
                    continue
            sock.settimeout(10)
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert sent < 16 * 1024 * 1024  # answered long before the upload would have ended
