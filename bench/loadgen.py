"""A small HTTP/1.1 keep-alive load generator (asyncio, raw sockets), wrk-style.

Each connection sends the next prepared request as soon as the previous response is read,
for ``duration_s`` after a warm-up. Reports requests per second and latency percentiles
over the measured window only. One process: on a small machine it costs the server less
CPU than a thread-per-connection client would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    statuses: dict[int, int]


def http_request(method: str, path: str, *, body: bytes = b"",
                 headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _run(host: str, port: int, requests: Iterator[bytes], connections: int,
               warmup_s: float, duration_s: float) -> LoadResult:
    start = time.perf_counter()
    measure_from, measure_to = start + warmup_s, start + warmup_s + duration_s
    latencies: list[float] = []
    non_2xx = 0
    statuses: dict[int, int] = {}

    async def connection() -> None:
        nonlocal non_2xx
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (now := time.perf_counter()) < measure_to:
                request = next(requests, None)
                if request is None:
                    return
                writer.write(request)
                status = await _read_response(reader)
                done = time.perf_counter()
                if now >= measure_from:
                    latencies.append(done - now)
                    non_2xx += not 200 <= status < 300
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    window = min(time.perf_counter(), measure_to) - measure_from
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return LoadResult(len(latencies) / window, pct(0.50), pct(0.99), len(latencies), non_2xx,
                      statuses)


def load(host: str, port: int, requests: Iterator[bytes] | Callable[[], bytes], *,
         connections: int, duration_s: float = 8.0, warmup_s: float = 1.0) -> LoadResult:
    """Drive ``connections`` keep-alive connections; ``requests`` yields raw request bytes."""
    if callable(requests):
        make = requests
        requests = (make() for _ in itertools.count())
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_run(host, port, iter(requests), connections, warmup_s, duration_s))
