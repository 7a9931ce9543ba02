"""Outbound HTTP, behind a small interface so unit tests can inject their own.

A target is a stranger: whatever it answers (any status, any headers, a body of any size,
at any pace, or nothing at all) the transport returns within the attempt's timeout and
never raises for the receiver's sake. Every failure becomes a response without a status
code, for the caller to classify. In detail:

* **One deadline per attempt**: resolving, connecting, sending, the headers and the body
  all count against ``timeout``. Each socket operation gets what is left of it, and a
  watchdog shuts the socket at the deadline, so a reply dripping a byte at a time (which
  satisfies every per-read timeout) is cut off too.
* **A bounded read**: at most ``MAX_BODY_BYTES`` of the body is read. A longer reply is
  not drained: the connection is closed instead, so a 200 MiB answer costs 64 KiB.
* **No redirects**: a 3xx is an answer like any other (``retry.classify`` rejects it).
* **Addresses checked at connect time**: with ``CLAWDBOT_OUTBOUND_ALLOW_PRIVATE`` off
  (production), the host is resolved here and every address must be public; the socket
  connects to the address that was checked, so DNS cannot answer differently in between.

``KeepAliveTransport`` is the standard library's ``http.client``, one keep-alive
connection per thread and origin; it costs about a fifth of the CPU per request of httpx
(docs/PERFORMANCE.md), which is what bounds one worker's throughput.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings

#: Enough of a reply to classify it (``{"status": "duplicate"}``) and show an excerpt.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class TransportResponse:
    status_code: int | None  # None: no HTTP answer (refused, reset, timeout)
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    error: str = ""
    duration_ms: float = 0.0


class Transport(Protocol):
    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float,
        max_body: int = MAX_BODY_BYTES,
    ) -> TransportResponse: ...


class AddressRefused(OSError):
    """The target resolves to an address outbound requests may not reach."""


class DeadlineExceeded(TimeoutError):
    """The attempt's single deadline passed."""


# -- the deadline watchdog -----------------------------------------------------------------


class _Watchdog:
    """One thread per process that shuts the sockets of attempts that ran out of time.

    A shut socket makes the blocked ``recv`` or ``send`` of the attempt's thread return at
    once, whatever ``http.client`` (or the TLS handshake) was in the middle of. The
    watchdog holds its own duplicate of the socket's descriptor, from ``arm`` to
    ``disarm`` (or firing): TLS wraps and detaches the socket object that connected, and
    the attempt may close its descriptor at any time, but the duplicate keeps its number
    allocated, so firing can never reach another socket.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, int] = {}  # ident -> fd
        self._ids = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, sock: socket.socket) -> int:
        fd = os.dup(sock.fileno())
        with self._cv:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="outbox-watchdog",
                                                daemon=True)
                self._thread.start()
            ident = next(self._ids)
            self._live[ident] = fd
            heapq.heappush(self._heap, (deadline, ident))
            self._cv.notify()
            return ident

    def disarm(self, ident: int) -> None:
        with self._cv:
            fd = self._live.pop(ident, None)
        if fd is not None:
            os.close(fd)

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cv.wait(wait)
                    continue
                _, ident = heapq.heappop(self._heap)
                _shut(self._live.pop(ident))


def _shut(fd: int) -> None:
    """Shut the connection (for every descriptor of it), then close our duplicate."""
    dup = socket.socket(fileno=fd)
    try:
        dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        dup.close()


_watchdog = _Watchdog()
_resolvers: dict[int, ThreadPoolExecutor] = {}


def _resolver() -> ThreadPoolExecutor:
    """Name resolution cannot be interrupted, so it runs here and the attempt stops
    waiting at its deadline. One pool per process (a forked child has none of the
    parent's threads)."""
    pid = os.getpid()
    if pid not in _resolvers:
        _resolvers[pid] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox-dns")
    return _resolvers[pid]


# -- addresses -----------------------------------------------------------------------------


def address_refusal(ip: str) -> str | None:
    """Why outbound requests may not reach ``ip``, or None when they may."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(addr, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    if not addr.is_global:  # shared (100.64/10), documentation, benchmarking ranges …
        return f"{ip} is not a public address"
    return None


def _resolve(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    future = _resolver().submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        return future.result(timeout=max(timeout, 0.001))
    except FutureTimeout:
        raise DeadlineExceeded(f"resolving {host} took too long") from None


def _connector(deadline: float, armed: list[int]) -> Callable[..., socket.socket]:
    """``http.client``'s ``_create_connection``, bounded by ``deadline`` (the socket is
    handed to the watchdog as soon as it connects, so a TLS handshake is bounded too) and,
    unless private addresses are allowed, refusing every address that is not public."""

    def connect(address: tuple[str, int], timeout: Any = None,
                source_address: Any = None) -> socket.socket:
        host, port = address
        infos = _resolve(host, port, deadline - time.monotonic())
        if not settings.CLAWDBOT_OUTBOUND_ALLOW_PRIVATE:
            refusals = [r for info in infos if (r := address_refusal(info[4][0]))]
            if refusals:
                raise AddressRefused(f"refused to connect to {host}: {refusals[0]} "
                                     "(CLAWDBOT_OUTBOUND_ALLOW_PRIVATE is off)")
        error: OSError = OSError(f"{host} has no address")
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(_remaining(deadline))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(sockaddr)
                armed.append(_watchdog.arm(deadline, sock))
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    return connect


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("deadline passed")
    return left


# -- the transport -------------------------------------------------------------------------


def _failed(error: str, started: float) -> TransportResponse:
    return TransportResponse(None, error=error, duration_ms=(time.perf_counter() - started) * 1000)


def _headers(reply: http.client.HTTPResponse) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined by ", " (RFC 9110 §5.3)."""
    merged: dict[str, str] = {}
    for name, value in reply.getheaders():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


#: A reused keep-alive connection the server has closed fails like this before any reply;
#: such a request is sent once more on a fresh connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class KeepAliveTransport:
    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self, origin: tuple[str, str, int]) -> tuple[
            http.client.HTTPConnection, bool]:
        pool: dict[tuple[str, str, int], http.client.HTTPConnection] = \
            self._local.__dict__.setdefault("pool", {})
        conn = pool.get(origin)
        if conn is not None and conn.sock is not None:
            return conn, True
        scheme, host, port = origin
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = pool[origin] = cls(host, port)
        return conn, False

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float,
        max_body: int = MAX_BODY_BYTES,
    ) -> TransportResponse:
        """POST ``body``; read at most ``max_body`` bytes of the answer (a batch's answer
        names every item, so it may read more than one envelope's)."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, parts.hostname or "", parts.port or
                      (443 if parts.scheme == "https" else 80))
        except ValueError as exc:  # a port that is not a number, or out of range
            return _failed(f"unusable URL: {exc}", started)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return _failed("unusable URL: needs http:// or https:// and a host", started)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for _ in range(2):
            conn, reused = self._connection(origin)
            armed: list[int] = []
            try:
                reply = self._exchange(conn, path, body, headers, deadline, armed, max_body)
            except _STALE as exc:
                failure: BaseException | None = exc
                retry = reused and time.monotonic() < deadline
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # ValueError: http.client refuses a non-ASCII path or a bad header value.
                failure, retry = exc, False
            else:
                failure = None
            finally:
                for ident in armed:  # before any close: see _Watchdog
                    _watchdog.disarm(ident)
            if failure is None:
                if not reply.complete:
                    self._drop(origin, conn)
                return reply.response(started)
            self._drop(origin, conn)
            if not retry:
                return _failed(_describe(failure, timeout, deadline), started)
        return _failed(f"timeout after {timeout:g}s", started)

    @staticmethod
    def _exchange(conn: http.client.HTTPConnection, path: str, body: bytes,
                  headers: Mapping[str, str], deadline: float, armed: list[int],
                  max_body: int = MAX_BODY_BYTES) -> _Reply:
        if conn.sock is None:
            conn.timeout = _remaining(deadline)
            conn._create_connection = _connector(deadline, armed)  # type: ignore[attr-defined]
            conn.connect()
        else:
            assert conn.sock is not None
            conn.sock.settimeout(_remaining(deadline))
            armed.append(_watchdog.arm(deadline, conn.sock))
        conn.request("POST", path, body=body, headers=dict(headers))
        reply = conn.getresponse()
        data = _read_capped(reply, deadline, max_body)
        # More may be coming: reading it is the target's game, not ours. The connection is
        # closed rather than drained (and reopened for the next request).
        return _Reply(reply.status, data, _headers(reply), complete=reply.isclosed())

    def _drop(self, origin: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        conn.close()
        pool = self._local.__dict__.get("pool", {})
        if pool.get(origin) is conn:
            del pool[origin]


def _read_capped(reply: http.client.HTTPResponse, deadline: float,
                 max_body: int = MAX_BODY_BYTES) -> bytes:
    """The body up to ``max_body`` bytes; raises when it ends short of its own length (the
    deadline shut the socket, or the target closed it): a reply cut off is no answer."""
    data = b""
    chunks, size = [], 0
    while size < max_body:
        chunk = reply.read(max_body - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if size < max_body and reply.length:  # Content-Length not reached
        if time.monotonic() >= deadline:
            raise DeadlineExceeded("the body was still arriving at the deadline")
        raise http.client.IncompleteRead(data, reply.length)
    return data


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    complete: bool

    def response(self, started: float) -> TransportResponse:
        return TransportResponse(self.status, self.body, self.headers,
                                 duration_ms=(time.perf_counter() - started) * 1000)


def _describe(exc: BaseException, timeout: float, deadline: float) -> str:
    if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
        return f"timeout after {timeout:g}s ({exc.__class__.__name__})"
    return f"{exc.__class__.__name__}: {exc}"


_default: KeepAliveTransport | None = None


def default_transport() -> KeepAliveTransport:
    """The process's shared keep-alive transport."""
    global _default
    if _default is None:
        _default = KeepAliveTransport()
    return _default
