"""A minimal-CPU WebSocket load client: many sockets in one process, raw asyncio protocol.

``python -m bench.wsclient URL SOCKETS SAMPLE`` opens SOCKETS live-only connections to
``URL`` (``ws://host:port/path``), prints ``READY`` once all are open, and records the
wall-clock arrival time of every frame. The first SAMPLE sockets also decode each frame's
JSON and keep ``(position, receivedAtUtc, milestoneId, arrival)``. On ``STOP`` (a line on
stdin) it prints one JSON line with the arrivals and its own CPU time, and exits.

Why not a WebSocket library: with 1,000 sockets on a 2-core machine that also runs the
server, per-message work in the client would be measured as server latency. This client
does the least a client can: it parses frame headers, answers pings, and decodes JSON only
on the sampled sockets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import struct
import sys
import time
from typing import Any
from urllib.parse import urlsplit


class Socket(asyncio.Protocol):
    def __init__(self, host: str, path: str, origin: str, sample: bool) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Origin: {origin}\r\n\r\n"
        ).encode()
        self.sample = sample
        self.buffer = b""
        self.open: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.arrivals: list[float] = []
        self.messages: list[tuple[int, str, str, float]] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.open.done():
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            self.open.set_result(True)
            self.buffer = rest
        self._frames(now)

    def _frames(self, now: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + length:
                break
            payload = buf[start:start + length]
            buf = buf[start + length:]
            if opcode == 0x1:
                self.arrivals.append(now)
                if self.sample:
                    message = json.loads(payload)
                    self.messages.append((message["position"], message["receivedAtUtc"],
                                          message["event"]["milestoneId"], now))
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()
        self.buffer = buf

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if self.transport is not None:
            self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


async def _open_all(url: str, count: int, sample: int) -> list[Socket]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    origin = f"http://{parts.netloc}"
    loop = asyncio.get_running_loop()
    sockets: list[Socket] = []
    for batch_start in range(0, count, 50):  # a burst of 1,000 connects overflows backlogs
        batch = [Socket(parts.netloc, parts.path or "/", origin, i < sample)
                 for i in range(batch_start, min(count, batch_start + 50))]
        for s in batch:
            await loop.create_connection(lambda s=s: s, host, port)
        await asyncio.gather(*(s.open for s in batch))
        sockets += batch
    return sockets


async def _main(url: str, count: int, sample: int) -> None:
    sockets = await _open_all(url, count, sample)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "arrivals": [s.arrivals for s in sockets],
        "messages": [m for s in sockets if s.sample for m in s.messages],
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "open": sum(1 for s in sockets if s.transport and not s.transport.is_closing()),
    }
    print(json.dumps(result), flush=True)
    for s in sockets:
        if s.transport:
            s.transport.close()


def main() -> None:
    url, count, sample = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    try:
        import uvloop

        uvloop.run(_main(url, count, sample))
    except ImportError:
        asyncio.run(_main(url, count, sample))


if __name__ == "__main__":
    main()
