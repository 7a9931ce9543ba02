"""Under ASGI, a body over the limit is answered 413 without reading the rest of it."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync

from clawdbot.asgi import application
from feed_app.models import DeadLetter

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = b"x" * 65536


def _call(headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, dict, int]:
    """POST ``chunks`` chunks to the ingest; return status, body and chunks pulled."""
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": CHUNK, "more_body": pulled < chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/internal/milestones/ingest", "raw_path": b"",
        "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("198.51.100.4", 5000), "server": ("127.0.0.1", 8000),
    }
    async_to_sync(application)(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), pulled


def test_declared_length_over_the_limit_is_413_before_reading_any_body():
    status, body, pulled = _call([(b"content-length", str(160 * len(CHUNK)).encode())], 160)
    assert status == 413 and body["status"] == "rejected"
    assert pulled == 0
    letter = DeadLetter.objects.get()
    assert letter.http_status == 413 and letter.remote_addr == "198.51.100.4"


def test_chunked_body_stops_being_read_just_past_the_limit(settings):
    status, _, pulled = _call([(b"transfer-encoding", b"chunked")], 160)
    assert status == 413
    assert pulled == settings.MILESTONE_INGEST_MAX_BYTES // len(CHUNK) + 1
    # The dead-letter tells the operator how much arrived before the stop, not 0.
    assert DeadLetter.objects.get().body_bytes == pulled * len(CHUNK)
