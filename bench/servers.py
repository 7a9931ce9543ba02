"""Start the project's ASGI server in a subprocess for a benchmark, the way ``make run`` does."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from bench.harness import BASE_DIR


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(stack: str, host: str, port: int) -> list[str]:
    """The server command of a stack: what ``make run`` would start (clawdbot.serve)."""
    from clawdbot.serve import web_command

    return web_command(host, port, stack)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def server(stack: str, *, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Run ``stack`` on a free port with the benchmark settings; yield (host, port)."""
    host, port = "127.0.0.1", _free_port()
    from clawdbot.serve import stop_process, web_env

    child_env = {**web_env(), "DJANGO_SETTINGS_MODULE": "bench.settings",
                 "LOG_LEVEL": "ERROR", **(env or {})}
    process = subprocess.Popen(command(stack, host, port), cwd=BASE_DIR, env=child_env)
    try:
        deadline = time.monotonic() + 60
        while not _ready(f"http://{host}:{port}/api/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{stack} did not start (exit code {process.poll()})")
            time.sleep(0.2)
        yield host, port
    finally:
        stop_process(process, timeout=15)
