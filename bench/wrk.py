"""Load from wrk (Debian's package): prepared requests, each sent once, figures as JSON.

wrk runs in C with two threads, so the load generator takes far less CPU than the server
it drives (a Python generator took one of the machine's two cores). Requests are written
to a file beforehand (unique keys, signatures already computed) and replayed by
``bench/requests.lua``, which prints the summary as one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("requests.lua")
THREADS = 2


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors, timeouts and non-2xx/3xx answers

    def as_dict(self) -> dict[str, float]:
        return {"rps": self.rps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "requests": self.requests, "errors": self.errors}


def http_request(method: str, path: str, *, body: bytes = b"",
                 headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def write_requests(requests: Iterable[bytes]) -> Path:
    fd, name = tempfile.mkstemp(prefix="bench-requests-", suffix=".bin")
    with os.fdopen(fd, "wb") as out:
        for raw in requests:
            out.write(b"%d\n" % len(raw))
            out.write(raw)
    return Path(name)


def wrk(url: str, requests: Path, *, connections: int, duration_s: float,
        timeout_s: float = 10.0) -> WrkResult:
    """Drive ``url`` (scheme://host:port) with ``connections`` for ``duration_s`` seconds."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    threads = min(THREADS, connections)
    env = {**os.environ, "BENCH_REQUESTS": str(requests), "BENCH_THREADS": str(threads)}
    command = [binary, "-t", str(threads), "-c", str(connections),
               "-d", f"{max(1, round(duration_s))}s", "--timeout", f"{timeout_s:g}s",
               "-s", str(SCRIPT), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True,
                         timeout=duration_s + timeout_s + 60).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(rps=data["requests"] / (data["duration_us"] / 1e6),
                     p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                     requests=data["requests"], errors=errors)
