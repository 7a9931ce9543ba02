"""Outbound HTTP, behind a small interface so unit tests can inject their own.

``HttpxTransport`` keeps one keep-alive client per process (recreated after a fork), never
follows redirects, and turns every network failure and timeout into a response without a
status code: the caller classifies, the transport never raises for the receiver's sake.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

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


_default: HttpxTransport | None = None


def default_transport() -> HttpxTransport:
    """The process's shared keep-alive transport."""
    global _default
    if _default is None:
        _default = HttpxTransport()
    return _default
