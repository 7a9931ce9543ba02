"""A real ASGI server (the one ``make run`` serves) in a subprocess, on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
from django.db import connection

from clawdbot.serve import stop_process, web_command, web_env
from tests.helpers import wait_for

BASE_DIR = Path(__file__).resolve().parents[1]


def procfile() -> dict[str, str]:
    """The Procfile's commands by role (``web: …`` lines)."""
    roles = {}
    for line in (BASE_DIR / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            role, _, command = line.partition(":")
            roles[role.strip()] = command.strip()
    return roles


def procfile_process(role: str, env: Mapping[str, str], log: IO[bytes]
                     ) -> subprocess.Popen[bytes]:
    """Start the Procfile's ``role`` as a process manager would: through the shell, with
    this interpreter first on ``PATH``, in a session of its own (``os.killpg`` stops it);
    its output goes to ``log``."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    full_env = {**os.environ, "PATH": path, "DJANGO_SETTINGS_MODULE": "clawdbot.settings",
                "CLAWDBOT_DB_NAME": connection.settings_dict["NAME"], **env}
    return subprocess.Popen(["sh", "-c", procfile()[role]], cwd=BASE_DIR,
                            env=full_env, start_new_session=True, stdout=log,
                            stderr=subprocess.STDOUT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        # Up once it reaches the database (503 "no worker" is fine: tests start their own).
        return httpx.get(f"{url}/api/health", timeout=1).json().get("database") == "up"
    except (httpx.HTTPError, ValueError):
        return False


@contextmanager
def asgi_server(env: Mapping[str, str] | None = None, *, port: int | None = None
                ) -> Iterator[str]:
    """Yield the base URL of the ASGI server serving ``clawdbot.asgi`` on the test database.

    ``env`` adds to the server's environment (``WEB_CONCURRENCY`` processes, 1 unless
    given); ``port`` (default: a free one) lets a test stop a server and start it again at
    the same address.
    """
    port = port or _free_port()
    env = {**web_env(), "CLAWDBOT_DB_NAME": connection.settings_dict["NAME"],
           "DJANGO_SETTINGS_MODULE": "clawdbot.settings", **(env or {})}
    process = subprocess.Popen(
        web_command("127.0.0.1", port, workers=int(env.get("WEB_CONCURRENCY", "1"))),
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _answers(url), timeout=30,
                 what="the ASGI server to answer")
        if process.poll() is not None:
            raise RuntimeError(f"the ASGI server exited: {process.stderr.read().decode()[-2000:]}")
        yield url
    finally:
        stop_process(process, timeout=10)
