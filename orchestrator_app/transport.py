"""Outbound HTTP, behind a small interface so unit tests can inject their own.

Both transports never follow redirects, apply the target's timeout, and turn every network
failure and timeout into a response without a status code: the caller classifies, the
transport never raises for the receiver's sake.

* ``KeepAliveTransport`` (the default): the standard library's ``http.client``, one
  keep-alive connection per thread and origin. It costs about a fifth of the CPU per
  request of httpx (docs/PERFORMANCE.md), which is what bounds one worker's throughput.
* ``HttpxTransport``: one httpx client per process, for when its features are wanted.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx

#: Enough of a reply to classify it (``{"status": "duplicate"}``) and show an excerpt.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class TransportResponse:
    status_code: int | None  # None: no HTTP answer (refused, reset, timeout)
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    duration_ms: float = 0.0


class Transport(Protocol):
    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse: ...


class HttpxTransport:
    def __init__(self, *, max_connections: int = 64) -> None:
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_connections)
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = httpx.Client(follow_redirects=False, limits=self._limits)
                self._pid = os.getpid()
            return self._client

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        started = time.perf_counter()
        try:
            response = self._get_client().post(
                url, content=body, headers=dict(headers), timeout=timeout
            )
        except httpx.TimeoutException as exc:
            return _failed(f"timeout after {timeout:g}s ({exc.__class__.__name__})", started)
        except httpx.HTTPError as exc:
            return _failed(f"{exc.__class__.__name__}: {exc}", started)
        return TransportResponse(
            status_code=response.status_code,
            body=response.content[:MAX_BODY_BYTES],
            headers=dict(response.headers),
            duration_ms=(time.perf_counter() - started) * 1000,
        )


def _failed(error: str, started: float) -> TransportResponse:
    return TransportResponse(None, error=error, duration_ms=(time.perf_counter() - started) * 1000)


#: A reused keep-alive connection the server has closed fails like this before any reply;
#: such a request is sent once more on a fresh connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class KeepAliveTransport:
    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self, origin: tuple[str, str, int], timeout: float) -> tuple[
            http.client.HTTPConnection, bool]:
        pool: dict[tuple[str, str, int], http.client.HTTPConnection] = \
            self._local.__dict__.setdefault("pool", {})
        conn = pool.get(origin)
        if conn is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        scheme, host, port = origin
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = pool[origin] = cls(host, port, timeout=timeout)
        return conn, False

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port or
                  (443 if parts.scheme == "https" else 80))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.perf_counter()
        for _ in range(2):
            conn, reused = self._connection(origin, timeout)
            try:
                conn.request("POST", path, body=body, headers=dict(headers))
                reply = conn.getresponse()
                data = reply.read(MAX_BODY_BYTES)
                if not reply.isclosed():
                    reply.read()  # drain, so the connection can be reused
                return TransportResponse(reply.status, data, dict(reply.getheaders()),
                                         duration_ms=(time.perf_counter() - started) * 1000)
            except _STALE as exc:
                self._drop(origin, conn)
                if not reused:
                    return _failed(f"{exc.__class__.__name__}: {exc}", started)
            except TimeoutError as exc:
                self._drop(origin, conn)
                return _failed(f"timeout after {timeout:g}s ({exc.__class__.__name__})", started)
            except (OSError, http.client.HTTPException) as exc:
                self._drop(origin, conn)
                return _failed(f"{exc.__class__.__name__}: {exc}", started)
        return _failed("connection closed by the receiver", started)

    def _drop(self, origin: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.__dict__.get("pool", {}).pop(origin, None)


_default: KeepAliveTransport | None = None


def default_transport() -> KeepAliveTransport:
    """The process's shared keep-alive transport."""
    global _default
    if _default is None:
        _default = KeepAliveTransport()
    return _default
