"""The servers a benchmark drives, each on a free port and stopped afterwards.

* ``project_server``: exactly what ``make run`` serves (``clawdbot.serve.web_command`` with
  the web process's environment and the project's settings), on the scratch database.
* ``baseline_server``: the bare baseline views (bench/baseline.py) under gunicorn with
  ``workers`` sync workers.
* ``worker``: django-q2's ``qcluster``, as ``make run`` starts it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from bench.harness import BASE_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """``url`` answers 200; or it is the project's health, which answers 503 with the
    database up while no outbox worker runs (a web server on its own)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        try:
            return exc.code == 503 and json.loads(exc.read()).get("database") == "up"
        except ValueError:
            return False
    except OSError:
        return False


@contextmanager
def _serving(command: list[str], env: dict[str, str], url: str, what: str) -> Iterator[None]:
    from clawdbot.serve import stop_process

    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start (exit code {process.poll()})")
            time.sleep(0.2)
        yield
    finally:
        stop_process(process, timeout=15)
        # uvicorn/gunicorn workers are children of the master; none may outlive it.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 9)


@contextmanager
def project_server(*, env: dict[str, str] | None = None, port: int | None = None,
                   workers: int | None = None) -> Iterator[str]:
    """``make run``'s web server on the scratch database (``workers`` web processes, by
    default ``make run``'s ``WEB_CONCURRENCY``); yields its base URL."""
    from clawdbot.serve import web_command, web_env

    port = port or free_port()
    # Every benchmark socket comes from this one host: the per-address cap (a defence
    # against one client taking a server's sockets) would otherwise stop it at 100.
    child_env = {**web_env(), "DJANGO_SETTINGS_MODULE": "clawdbot.settings",
                 "LOG_LEVEL": "ERROR", "CLAWDBOT_WS_MAX_PER_ADDRESS": "100000", **(env or {})}
    base = f"http://127.0.0.1:{port}"
    with _serving(web_command("127.0.0.1", port, workers=workers), child_env, f"{base}/api/health",
                  "the project's web server"):
        yield base


@contextmanager
def baseline_server(workers: int) -> Iterator[str]:
    """The baseline views under gunicorn with ``workers`` sync workers; yields the URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DB_POOL_SIZE"}
    env.update({"DJANGO_SETTINGS_MODULE": "bench.settings", "LOG_LEVEL": "ERROR"})
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers),
               "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--backlog", "2048",
               "--log-level", "warning", "bench.wsgi:application"]
    base = f"http://127.0.0.1:{port}"
    with _serving(command, env, f"{base}/bench/feed-pgjson", f"gunicorn -w {workers}"):
        yield base


@contextmanager
def worker(env: dict[str, str]) -> Iterator[None]:
    """``manage.py qcluster`` (the pipeline's worker) with ``env`` added."""
    from clawdbot.serve import stop_process

    process = subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
                               cwd=BASE_DIR, env={**os.environ, **env},
                               start_new_session=True)
    try:
        yield
    finally:
        stop_process(process, timeout=20)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
