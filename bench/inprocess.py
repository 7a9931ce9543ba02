"""CPU per request of the hot routes in one process, no server: ``python -m bench.inprocess``.

Calls the project's ASGI application directly (no sockets, no load generator) on the
scratch database, once on the lean path and once with it off (``CLAWDBOT_HOT_PATHS``:
Django, DRF and the middleware), and prints the process CPU time per request. The
profile figures of docs/PERFORMANCE.md come from this and from py-spy.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid


def _scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000), "headers": [(b"host", b"127.0.0.1"), *headers]}


async def _one(app, scope: dict, body: bytes) -> int:  # type: ignore[no-untyped-def]
    sent: list[dict] = []
    given = False

    async def receive() -> dict:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Future()
        raise AssertionError

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def _ingest_call(i: int, run_id: str) -> tuple[dict, bytes]:
    from bench.bench_feed import envelope, signed_ingest

    raw = signed_ingest(envelope(run_id, i), time.time())
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b": ")
        if name.lower() != b"host":
            headers.append((name.lower(), value))
    return _scope("POST", "/internal/milestones/ingest", b"", headers), body


async def _measure(app, calls: list[tuple[dict, bytes]]) -> float:  # type: ignore[no-untyped-def]
    for scope, body in calls[:20]:  # warm: connections, prepared statements
        await _one(app, scope, body)
    started = time.process_time()
    for scope, body in calls[20:]:
        status = await _one(app, scope, body)
        if status != 200:
            raise RuntimeError(f"status {status}")
    return (time.process_time() - started) / (len(calls) - 20) * 1000


def main() -> None:
    from bench import harness

    harness.prepare_database()
    os.environ["DJANGO_DB_POOL_SIZE"] = "4"
    from django.conf import settings

    from clawdbot.asgi import application

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    latest = [(_scope("GET", "/api/milestones/latest", b"limit=50", []), b"")] * (n + 20)
    for lean in (True, False):
        settings.CLAWDBOT_HOT_PATHS = lean
        calls = [_ingest_call(i, uuid.uuid4().hex[:8]) for i in range(n + 20)]
        ingest_ms = asyncio.run(_measure(application, calls))
        feed_ms = asyncio.run(_measure(application, latest))
        label = "lean path" if lean else "Django (middleware, DRF, thread per request)"
        print(f"{label}: ingest {ingest_ms:.2f} ms CPU/request, "
              f"feed latest {feed_ms:.2f} ms CPU/request")


if __name__ == "__main__":
    main()
